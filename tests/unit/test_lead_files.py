"""Reading lead files as chunks: cells to JSON values, bad rows to per-row errors, bad headers refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml_core.errors import LeadFileError
from ml_core.lead_files import LeadChunk, chunk_leads, count_rows_estimate, read_lead_file
from ml_core.spec import load_spec, parse_spec

SPEC = load_spec(Path(__file__).resolve().parents[2] / "models", "lead_scorer")
HEADER = "id," + ",".join(SPEC.feature_names)
GOOD = "lead-1,1.5,240,5,true,0.9,0.8,yes,0,0.85,1"


def write(path: Path, *lines: str | bytes) -> Path:
    path.write_bytes(b"\n".join(line.encode() if isinstance(line, str) else line for line in lines) + b"\n")
    return path


def test_cells_become_json_values_by_feature_kind(tmp_path: Path) -> None:
    (chunk,) = read_lead_file(write(tmp_path / "a.csv", HEADER, GOOD), SPEC, 10)
    assert chunk.rejected == {}
    assert chunk.leads == [{
        "id": "lead-1", "response_time_hours": 1.5, "message_length_avg": 240, "questions_asked": 5,
        "price_range_mentioned": True, "timeline_urgency": 0.9, "location_specificity": 0.8,
        "financing_mentioned": True, "family_size_mentioned": False, "job_stability_score": 0.85,
        "previous_real_estate_experience": True,
    }]


def test_bad_rows_get_their_own_error_and_the_others_are_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        HEADER,
        GOOD,
        GOOD.replace("lead-1", "lead-2") + ",surplus",  # too many fields
        GOOD.replace("lead-1", "le\xffad-3").encode("latin-1"),  # id bytes that are not UTF-8
        GOOD.replace("lead-1", "lead-4").replace(",240,", ",\xe9\xe9,").encode("latin-1"),
        "",  # a blank line is not a record
        GOOD.replace("lead-1", "lead-5").replace(",240,", ",lots,"),  # passed on as text for validation
    )
    (chunk,) = read_lead_file(path, SPEC, 10)
    assert len(chunk.leads) == 5
    assert chunk.rejected[1]["problems"] == [{"field": "row", "problem": "has 12 fields, the header has 11"}]
    assert chunk.rejected[1]["lead_id"] == "lead-2"
    assert chunk.rejected[2]["problems"] == [{"field": "id", "problem": "not valid UTF-8"}]
    assert chunk.rejected[2]["lead_id"] is None
    assert chunk.rejected[3]["problems"] == [{"field": "message_length_avg", "problem": "not valid UTF-8"}]
    assert chunk.leads[1] is None and chunk.leads[4]["message_length_avg"] == "lots"
    assert LeadChunk.from_json(chunk.to_json()).rejected.keys() == chunk.rejected.keys()  # no surrogate reaches JSON


def test_empty_cells_are_left_out_so_defaults_or_missing_apply(tmp_path: Path) -> None:
    (chunk,) = read_lead_file(write(tmp_path / "a.csv", HEADER, GOOD.replace(",0.9,", ",,")), SPEC, 10)
    assert "timeline_urgency" not in chunk.leads[0]


def test_chunks_have_the_asked_size_and_number_rows_across_the_file(tmp_path: Path) -> None:
    lines = [GOOD.replace("lead-1", f"lead-{i}") for i in range(25)]
    chunks = list(read_lead_file(write(tmp_path / "a.csv", HEADER, *lines), SPEC, 10))
    assert [(c.first_row, len(c.leads)) for c in chunks] == [(0, 10), (10, 10), (20, 5)]
    assert chunks[2].leads[0]["id"] == "lead-20"
    assert count_rows_estimate(tmp_path / "a.csv") == 25


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (HEADER.replace("id,", "ident,"), "no 'id' column"),
        (HEADER.replace(",timeline_urgency", ""), "required columns missing for model 'lead_scorer': ['timeline_urgency']"),
        (HEADER + ",email", "columns model 'lead_scorer' does not use: ['email']"),
        (HEADER + ",id", "column names repeat: ['id']"),
    ],
)
def test_a_header_that_cannot_be_scored_is_refused_before_any_row(tmp_path: Path, header: str, problem: str) -> None:
    with pytest.raises(LeadFileError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        read_lead_file(write(tmp_path / "a.csv", header, GOOD), SPEC, 10)


def test_unknown_columns_are_dropped_when_configured_to_ignore(tmp_path: Path) -> None:
    (chunk,) = read_lead_file(write(tmp_path / "a.csv", HEADER + ",email", GOOD + ",x@example.com"), SPEC, 10, "ignore")
    assert "email" not in chunk.leads[0]


def test_other_suffixes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(LeadFileError, match="expected a .csv, .parquet or .jsonl file"):
        read_lead_file(write(tmp_path / "a.xlsx", HEADER), SPEC, 10)


def test_parquet_cells_nan_binary_and_infinite_values(tmp_path: Path) -> None:
    frame = pd.read_csv(write(tmp_path / "a.csv", HEADER, GOOD, GOOD.replace("lead-1", "lead-2"), GOOD.replace("lead-1", "lead-3")))
    frame["timeline_urgency"] = [np.nan, 0.5, np.inf]
    frame["id"] = [b"lead-1", b"le\xffad-2", b"lead-3"]
    frame.to_parquet(tmp_path / "a.parquet")
    (chunk,) = read_lead_file(tmp_path / "a.parquet", SPEC, 10)
    assert "timeline_urgency" not in chunk.leads[0] and chunk.leads[0]["id"] == "lead-1"
    assert chunk.rejected[1]["problems"] == [{"field": "id", "problem": "not valid UTF-8"}]
    assert chunk.rejected[2]["problems"] == [{"field": "timeline_urgency", "problem": "is infinite"}]
    assert count_rows_estimate(tmp_path / "a.parquet") == 3


def test_in_memory_leads_that_json_cannot_carry_are_rejected_one_by_one() -> None:
    leads = [{"id": "a", "x": 1}, {"id": "b", "x": float("nan")}, {"id": "c", "x": object()}, {"id": "d", "x": 10**30}]
    restored = LeadChunk.from_json(next(chunk_leads(leads, 10)).to_json())
    assert restored.leads[:2] == [{"id": "a", "x": 1}, {"id": "b", "x": None}]  # NaN is missing, as in a file
    assert restored.leads[2] is None and restored.leads[3] is None
    assert sorted(restored.rejected) == [2, 3]
    assert restored.rejected[2]["lead_id"] == "c"


def test_integers_beyond_64_bits_in_a_file_become_floats_for_validation(tmp_path: Path) -> None:
    (chunk,) = read_lead_file(write(tmp_path / "a.csv", HEADER, GOOD.replace(",5,", ",99999999999999999999999,")), SPEC, 10)
    assert chunk.leads[0]["questions_asked"] == 1e23


def test_tags_cells_become_arrays_from_csv_and_parquet(tmp_path: Path) -> None:
    spec = parse_spec("tagged", {
        "target": "y", "quality_gate": 0.5, "bands": {"hot": 60, "warm": 30}, "fallback": {"intercept": 0.0},
        "features": [{"name": "amenities", "kind": "tags", "categories": ["pool", "garden"], "default": []}],
    })
    (chunk,) = read_lead_file(write(tmp_path / "a.csv", "id,amenities", "a,pool|garden", "b,"), spec, 10)
    assert chunk.leads == [{"id": "a", "amenities": ["pool", "garden"]}, {"id": "b"}]
    pd.DataFrame({"id": ["a"], "amenities": [["garden"]]}).to_parquet(tmp_path / "a.parquet")
    (chunk,) = read_lead_file(tmp_path / "a.parquet", spec, 10)
    assert chunk.leads == [{"id": "a", "amenities": ["garden"]}]


def test_json_lines_files_hold_leads_in_either_form(tmp_path: Path) -> None:
    from tests.unit.helpers import REPO_MODELS, valid_lead

    conversation = json.loads((REPO_MODELS.parent / "examples" / "lead_scorer" / "conversations" / "hot.json").read_text())
    path = tmp_path / "leads.jsonl"
    path.write_bytes(b"\n".join([json.dumps(valid_lead("a")).encode(), b"", json.dumps(conversation).encode(), b"{not json", b"\xff\xfe"]) + b"\n")
    chunks = list(read_lead_file(path, load_spec(REPO_MODELS, "lead_scorer"), 3))
    assert [c.first_row for c in chunks] == [0, 3]
    leads = [lead for c in chunks for lead in c.leads]
    assert leads[0]["id"] == "a" and "context" in leads[1] and leads[2] is None and leads[3] is None
    assert chunks[0].rejected[2]["problems"] == [{"field": "row", "problem": "not a JSON value"}]
    assert chunks[1].rejected[0]["problems"] == [{"field": "row", "problem": "not valid UTF-8"}]
    assert count_rows_estimate(path) == 5  # newlines: an estimate for the progress bar, blank lines included
