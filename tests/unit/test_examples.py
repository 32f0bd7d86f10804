"""The files under examples/ are valid inputs of the models they are for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ml_core.features import encode_leads
from ml_core.lead_files import read_lead_file
from ml_core.matching import rank_properties
from ml_core.spec import load_spec
from tests.unit.helpers import REPO_MODELS
from tests.unit.pairs import rules_served

EXAMPLES = REPO_MODELS.parent / "examples"


@pytest.mark.parametrize("model", ["lead_scorer", "churn_predictor"])
def test_example_leads_validate_against_their_spec(model: str) -> None:
    spec = load_spec(REPO_MODELS, model)
    lead = json.loads((EXAMPLES / model / "lead.json").read_text())
    assert not encode_leads(spec, [lead]).errors
    chunks = list(read_lead_file(EXAMPLES / model / "leads.csv", spec, 100))
    assert sum(len(c.leads) for c in chunks) == 20 and not any(c.rejected for c in chunks)
    assert not encode_leads(spec, [lead for c in chunks for lead in c.leads]).errors


def test_the_pair_example_ranks_every_listing(tmp_path: Path) -> None:
    lead = json.loads((EXAMPLES / "property_matching" / "lead.json").read_text())
    properties = json.loads((EXAMPLES / "property_matching" / "properties.json").read_text())
    ranked = rank_properties(rules_served(tmp_path), lead, properties, top_k=None)
    assert sorted(p["property_id"] for p in ranked["matches"]) == [p["id"] for p in properties]
    assert len(ranked["matches"]) == 4 and not ranked["errors"]
