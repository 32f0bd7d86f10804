"""Per-lead results written as a stream to CSV, Parquet or JSON lines, a chunk at a time.

Columns are ``ml_core.bulk_chunk.ROW_FIELDS``: ``row`` (0-based position in the input), the
score fields (empty for an invalid lead), ``features`` (what was derived from a lead given as a
conversation; empty otherwise) and ``error`` (the validation message, empty when the lead was
scored). CSV and Parquet hold ``features`` as a JSON object in text; a JSON-lines file holds each
row as an object, ``features`` as an object and, for an invalid lead, its ``problems`` as
``[field, problem]`` pairs. The file is written under a temporary name and renamed when
complete, so a crash never leaves a half file under the name asked for.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from ml_core.bulk_chunk import ROW_FIELDS
from ml_core.errors import LeadFileError
from ml_core.lead_files import CSV_SUFFIXES, JSONL_SUFFIXES, PARQUET_SUFFIXES

_PARQUET_ROW_GROUP = 32_768  # rows buffered per row group: bounds the writer's memory
_JSONL_FIELDS = (*ROW_FIELDS, "problems")


class ResultWriter:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in CSV_SUFFIXES + PARQUET_SUFFIXES + JSONL_SUFFIXES:
            raise LeadFileError(self.path.name, f"results go to a .csv, .parquet or .jsonl file, got {suffix or 'no suffix'!r}")
        self.format = "csv" if suffix in CSV_SUFFIXES else "parquet" if suffix in PARQUET_SUFFIXES else "jsonl"
        self.rows = 0
        self._partial = self.path.with_name(f".{self.path.name}.partial")
        self._buffer: dict[str, list[Any]] = {name: [] for name in ROW_FIELDS}
        self._buffered = 0
        self._file: Any = None
        self._csv: Any = None
        self._parquet: Any = None

    def __enter__(self) -> ResultWriter:
        if self.format == "csv":
            self._file = open(self._partial, "w", encoding="utf-8", newline="")  # closed in __exit__
            self._csv = csv.DictWriter(self._file, fieldnames=ROW_FIELDS, extrasaction="ignore")
            self._csv.writeheader()
        elif self.format == "jsonl":
            self._file = open(self._partial, "wb")  # closed in __exit__
        return self

    def write(self, rows: list[dict[str, Any]]) -> None:
        self.rows += len(rows)
        if self.format == "jsonl":
            self._file.write(b"".join(orjson.dumps({k: row.get(k) for k in _JSONL_FIELDS}) + b"\n" for row in rows))
            return
        for row in rows:  # rows are the writer's to change, as chunk_rows made them for it
            if row.get("features") is not None:
                row["features"] = _json_text(row["features"])
        if self.format == "csv":
            for row in rows:  # true/false, the spelling every reader of ours (and JSON) takes; not Python's True
                if isinstance(row.get("escalated"), bool):
                    row["escalated"] = "true" if row["escalated"] else "false"
            self._csv.writerows(rows)
            return
        for name, column in self._buffer.items():  # columns, not row dicts: a fraction of the memory
            column.extend(row[name] for row in rows)
        self._buffered += len(rows)
        if self._buffered >= _PARQUET_ROW_GROUP:
            self._flush_parquet()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.format == "parquet" and kind is None:
            self._flush_parquet(final=True)
        if self._file is not None:
            self._file.close()
        if self._parquet is not None:
            self._parquet.close()
        if kind is None:
            os.replace(self._partial, self.path)
        else:
            self._partial.unlink(missing_ok=True)

    def _flush_parquet(self, final: bool = False) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self._partial, _schema(pa))
        if self._buffered or (final and self.rows == 0):
            self._parquet.write_table(pa.table(self._buffer, schema=_schema(pa)))
        self._buffer = {name: [] for name in ROW_FIELDS}
        self._buffered = 0


def _json_text(features: dict[str, Any]) -> str:
    """A conversation's derived features as one cell: the spec's order, compact JSON."""
    return orjson.dumps(features).decode()


def _schema(pa: Any) -> Any:
    types = {"row": pa.int64(), "score": pa.float64(), "probability": pa.float64(), "confidence": pa.float64(), "escalated": pa.bool_()}
    return pa.schema([(name, types.get(name, pa.string())) for name in ROW_FIELDS])
