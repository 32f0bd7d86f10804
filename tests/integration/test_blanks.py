"""Blanks through a real worker (issue #18): a spec whose features may be missing, trained on a
table with blanks, serves ``score_lead``, ``predict_batch`` and ``score-file``; its derived rules
serve when its model is broken (it has no ``[fallback]``); a jump in blanks raises ``model.drift``.

The models are added to the session's models directory, so the session worker serves them
(it loads a model on first use); the repository's models are left as they are.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis
from click.testing import CliRunner

from leadscore import drift_check, predict_batch, score_lead
from leadscore.cli.main import main
from leadscore.settings import get_settings
from leadscore.stores.events import stream_key
from leadscore.worker.snapshots import drift_key
from ml_core.errors import InvalidLeadError
from ml_core.fallback import RuleScorer
from ml_core.features import encode_leads
from ml_core.lifecycle import train_and_register
from ml_core.pool import ModelPool
from ml_core.registry import ONNX_FILE
from ml_core.scoring import score_batch
from ml_core.spec import Fallback
from tests.blank_tables import BLANK_MODEL, BLANK_SPEC_TOML, blank_lead, blank_table
from tests.stores import clone_version, registry_at
from tests.waits import poll

BROKEN = "crm_blanks_broken"



@pytest.fixture(scope="module")
def blank_models(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``crm_blanks`` trained on a table with blanks, and a copy of it whose ONNX file is corrupt;
    removed afterwards, so later users of the session's models directory never see them."""
    export = tmp_path_factory.mktemp("blanks") / "export.csv"
    blank_table().to_csv(export, index=False)
    for name in (BLANK_MODEL, BROKEN):
        (models_dir / name).mkdir(exist_ok=True)
        (models_dir / name / "spec.toml").write_text(BLANK_SPEC_TOML)
    train_and_register(registry_at(models_dir), BLANK_MODEL, data=export, folds=3)
    clone_version(registry_at(models_dir), BLANK_MODEL, "v1", BROKEN)
    shutil.copytree(models_dir / BLANK_MODEL / "v1", models_dir / BROKEN / "v1")
    with open(models_dir / BROKEN / "v1" / ONNX_FILE, "ab") as f:
        f.write(b"\0")
    yield models_dir
    for name in (BLANK_MODEL, BROKEN):
        shutil.rmtree(models_dir / name)


def test_leads_with_blanks_are_scored_and_a_missing_required_field_is_refused(worker: Path, blank_models: Path) -> None:
    # Given leads that leave optional features out, or null, and one with an unseen category
    leads = [
        blank_lead("w-1"),
        blank_lead("w-2", income=None, visits=None, mortgage=None, channel=None),
        blank_lead("w-3", income=72_000.0, visits=4, mortgage=True, channel="referral"),
        blank_lead("w-4", channel="billboard"),
        {"id": "w-5", "income": 50_000.0},
    ]
    # When score_lead and predict_batch score them through the worker
    single = score_lead.delay(leads[0], model=BLANK_MODEL, explain=True).get(timeout=30)
    batch = predict_batch.delay(leads, model=BLANK_MODEL).get(timeout=30)

    # Then the blanks are scored by the model, as in-process, and only the missing required field is refused
    assert single["served_by"] == "onnx" and 0 <= single["score"] <= 100
    top = {t["feature"]: t for t in single["explanation"]["top"]}
    assert top["income"]["missing"] is True and top["income"]["value"] is None
    assert [r.get("served_by") for r in batch] == ["onnx"] * 4 + [None]
    assert batch[4]["error"] == "InvalidLeadError" and batch[4]["problems"] == [{"field": "age", "problem": "missing (required)"}]
    in_process = score_batch(registry_at(blank_models).spec(BLANK_MODEL), ModelPool(registry_at(blank_models)).get(BLANK_MODEL).scorer, leads[:4])
    assert [r["probability"] for r in batch[:4]] == [r["probability"] for r in in_process]
    assert batch[0]["probability"] == batch[1]["probability"] == single["probability"]  # absent and null are the same blank
    with pytest.raises(InvalidLeadError) as info:
        score_lead.delay(leads[4], model=BLANK_MODEL).get(timeout=30)
    assert info.value.fields == ["age"]


def test_score_file_scores_empty_cells(worker: Path, blank_models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a file with empty cells in every optional column and one row without the required age
    frame = blank_table(rows=300, seed=5).drop(columns="won").rename(columns={"lead_id": "id"})
    frame["age"] = frame["age"].astype(object)
    frame.loc[7, "age"] = None
    frame.to_csv(tmp_path / "leads.csv", index=False)
    assert frame[["income", "visits", "mortgage", "channel"]].isna().any(axis=1).sum() > 100
    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(blank_models))  # the client reads the spec from here
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["score-file", str(tmp_path / "leads.csv"), "--out", str(tmp_path / "out.csv"), "--model", BLANK_MODEL])
    finally:
        get_settings.cache_clear()
    # Then every other row is scored, and the one row is named with its typed error
    assert result.exit_code == 1, result.output
    assert "row 7: lead 'L7' is invalid: age: missing (required)" in result.stderr
    scores = pd.read_csv(tmp_path / "out.csv")
    assert list(scores.index[scores["error"].notna()]) == [7]
    assert scores["score"].notna().sum() == 299 and set(scores["served_by"].dropna()) == {"onnx"}


def test_derived_rules_serve_a_spec_without_fallback_when_its_model_is_broken(worker: Path, blank_models: Path) -> None:
    leads = [blank_lead("r-1"), blank_lead("r-2", income=90_000.0, visits=7, mortgage=True, channel="referral")]
    results = [score_lead.delay(lead, model=BROKEN).get(timeout=30) for lead in leads]
    assert [r["served_by"] for r in results] == ["fallback", "fallback"]
    assert "model.onnx fails its checksum" in results[0]["fallback_reason"]
    registry = registry_at(blank_models)
    entry = registry.card(BROKEN, "v1")["fallback_rules"]
    spec = registry.spec(BROKEN)
    expected = RuleScorer(spec, "", Fallback(entry["intercept"], entry["weights"])).predict_proba(encode_leads(spec, leads).X)
    assert [r["probability"] for r in results] == [round(float(p), 6) for p in expected]
    assert results[1]["probability"] > results[0]["probability"]


def test_a_jump_in_blanks_raises_the_drift_event(worker: Path, blank_models: Path) -> None:
    # Given traffic in which income is always blank (about 15% of training rows had it blank)
    snapshots = redis.Redis.from_url(os.environ["LEADSCORE_LOCK_URL"])
    events = redis.Redis.from_url(get_settings().cache_url)
    leads = blank_table(rows=600, seed=6).drop(columns=["won", "income"]).rename(columns={"lead_id": "id"})
    leads["mortgage"] = leads["mortgage"].map({"yes": True, "no": False})  # JSON leads carry booleans
    records = [{k: (None if pd.isna(v) else v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in leads.to_dict("records")]
    pending = [score_lead.delay({**r, "id": f"d-{r['id']}"}, model=BLANK_MODEL) for r in records]
    assert all(p.get(timeout=60)["served_by"] == "onnx" for p in pending)
    poll(lambda: snapshots.llen(drift_key(BLANK_MODEL)) >= 600, timeout=30, what="600 drift samples")
    before = events.xlen(stream_key("model.drift"))

    # When the drift check runs
    report = drift_check.delay([BLANK_MODEL]).get(timeout=60)[BLANK_MODEL]

    # Then income drifted through its blanks alone, and the event says so
    assert "income" in report["missing_drifted"] and report["missing"]["income"]["recent"] == 1.0
    assert report["missing"]["income"]["expected"] < 0.3 and report["drifted"]
    event = poll(
        lambda: [f for _, f in events.xrange(stream_key("model.drift"))[before:] if f[b"model"] == BLANK_MODEL.encode()],
        timeout=15, what="a model.drift event",
    )
    assert b"share of blanks rose" in event[-1][b"detail"] and b"income" in event[-1][b"detail"]
