"""Chunk packing and the job summary: every input row once, in order, and exact statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
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


def read_results(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.DataFrame([orjson.loads(line) for line in path.read_bytes().splitlines()])
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_result_files_hold_every_row_and_appear_only_when_complete(tmp_path: Path, suffix: str) -> None:
    chunks = packed_chunks(300, 100, bad={7})
    path = tmp_path / f"scores{suffix}"
    with ResultWriter(path) as writer:
        for packed in chunks:
            writer.write(list(chunk_rows(packed)))
        assert not path.exists()
    frame = read_results(path)
    columns = [*ROW_FIELDS, "problems"] if suffix == ".jsonl" else list(ROW_FIELDS)
    assert list(frame.columns) == columns and list(frame["row"]) == list(range(300))
    assert frame["error"].notna().sum() == 1 and pd.isna(frame["score"][7])
    assert frame["features"].isna().all()  # leads given as features: nothing was derived
    if suffix == ".csv":  # booleans in the spelling our readers take (and JSON's), not Python's True/False
        assert set(path.read_text().splitlines()[1].split(",")) & {"true", "false"}
        assert "True" not in path.read_text() and "False" not in path.read_text()
    with pytest.raises(RuntimeError), ResultWriter(tmp_path / f"broken{suffix}") as writer:
        writer.write(list(chunk_rows(chunks[0])))
        raise RuntimeError("crash mid-way")
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_result_files_carry_what_was_derived_from_a_conversation(tmp_path: Path, suffix: str) -> None:
    # given a chunk mixing a conversation, a lead given as features and an invalid conversation
    conversation = {"id": "conv", "context": {"messages": [
        {"from": "agent", "at": "2026-03-01T08:00:00Z", "text": "Hi"},
        {"from": "lead", "at": "2026-03-01T10:00:00Z", "text": "We're pre-approved, budget $400k. When can we see it?"},
    ]}}
    leads = [conversation, factories.lead(1), {"id": "broken", "context": {"messages": "no"}}]
    (chunk,) = chunk_leads(leads, 10)
    results = score_chunk(SPEC, SCORER, chunk)
    packed = orjson.loads(orjson.dumps(pack(results, 0, SPEC.name)))  # as a recorded chunk is stored
    # when its rows are written to a results file
    path = tmp_path / f"scores{suffix}"
    with ResultWriter(path) as writer:
        writer.write(list(chunk_rows(packed)))
    frame = read_results(path)
    # then the conversation's row carries the features it scored with, the others none
    features = frame["features"][0]
    derived = features if suffix == ".jsonl" else json.loads(features)
    assert derived == results[0]["features"]
    assert list(derived) == list(SPEC.feature_names)
    assert derived["financing_mentioned"] is True and derived["questions_asked"] == 1
    assert pd.isna(frame["features"][1]) and pd.isna(frame["features"][2])
    assert frame["error"][2] and pd.isna(frame["score"][2])
    if suffix == ".jsonl":
        assert frame["problems"][2] == [{"field": "context.messages", "problem": "expected a JSON array, got string"}]


def test_a_chunk_without_conversations_stores_no_features_column() -> None:
    (packed,) = packed_chunks(5, 5, bad=set())
    assert "features" not in packed["scored"]
