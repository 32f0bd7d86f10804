"""Chunk packing and the job summary: every input row once, in order, and exact statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_core.bulk_chunk import ROW_FIELDS, chunk_rows, pack, score_chunk
from ml_core.bulk_summary import MAX_LISTED_INVALID, SummaryBuilder
from ml_core.fallback import RuleScorer
from ml_core.lead_files import chunk_leads
from ml_core.result_files import ResultWriter
from ml_core.spec import load_spec
from tests import factories

SPEC = load_spec(Path(__file__).resolve().parents[2] / "models", "lead_scorer")
SCORER = RuleScorer(SPEC, "unit test")


def packed_chunks(n: int, size: int, bad: set[int]) -> list[dict]:
    leads = factories.leads(n, 1)
    for i in bad:
        leads[i] = {**leads[i], "questions_asked": -1}
    return [pack(score_chunk(SPEC, SCORER, chunk), chunk.first_row, SPEC.name) for chunk in chunk_leads(leads, size)]


def test_chunk_rows_give_every_input_row_once_in_order() -> None:
    chunks = packed_chunks(250, 100, bad={3, 150})
    rows = [row for packed in chunks for row in chunk_rows(packed)]
    assert [r["row"] for r in rows] == list(range(250))
    assert [r["row"] for r in rows if r["error"]] == [3, 150]
    assert rows[3]["problems"] == [{"field": "questions_asked", "problem": "out of range [0, 1000]: -1"}]
    assert rows[0]["served_by"] == "fallback" and set(ROW_FIELDS) <= set(rows[0])


def test_summary_statistics_are_exact() -> None:
    chunks = packed_chunks(3000, 700, bad={10, 2999})
    builder = SummaryBuilder()
    for packed in chunks:
        builder.add(packed)
    summary = builder.summary()
    scores = np.asarray([r["score"] for p in chunks for r in chunk_rows(p) if r["error"] is None])
    assert (summary["leads"], summary["scored"], summary["invalid"], summary["chunks"]) == (3000, 2998, 2, 5)
    for q in (1, 5, 25, 50, 75, 95, 99):
        assert summary["score_percentiles"][f"p{q}"] == pytest.approx(np.percentile(scores, q, method="inverted_cdf"))
    assert summary["score_mean"] == pytest.approx(scores.mean(), abs=1e-4)
    assert [b["count"] for b in summary["score_histogram"]] == list(np.histogram(scores, bins=range(0, 101, 10))[0])
    assert sum(summary["labels"].values()) == 2998
    assert [e["row"] for e in summary["invalid_leads"]] == [10, 2999]


def test_summary_lists_a_bounded_number_of_invalid_leads() -> None:
    builder = SummaryBuilder()
    for packed in packed_chunks(1200, 600, bad=set(range(1200))):
        builder.add(packed)
    summary = builder.summary()
    assert summary["invalid"] == 1200 and summary["invalid_leads_listed"] == MAX_LISTED_INVALID
    assert summary["score_percentiles"]["p50"] is None and summary["score_mean"] is None


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_result_files_hold_every_row_and_appear_only_when_complete(tmp_path: Path, suffix: str) -> None:
    chunks = packed_chunks(300, 100, bad={7})
    path = tmp_path / f"scores{suffix}"
    with ResultWriter(path) as writer:
        for packed in chunks:
            writer.write(list(chunk_rows(packed)))
        assert not path.exists()
    frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert list(frame.columns) == list(ROW_FIELDS) and list(frame["row"]) == list(range(300))
    assert frame["error"].notna().sum() == 1 and pd.isna(frame["score"][7])
    if suffix == ".csv":  # booleans in the spelling our readers take (and JSON's), not Python's True/False
        assert set(path.read_text().splitlines()[1].split(",")) & {"true", "false"}
        assert "True" not in path.read_text() and "False" not in path.read_text()
    with pytest.raises(RuntimeError), ResultWriter(tmp_path / f"broken{suffix}") as writer:
        writer.write(list(chunk_rows(chunks[0])))
        raise RuntimeError("crash mid-way")
    assert list(tmp_path.iterdir()) == [path]
