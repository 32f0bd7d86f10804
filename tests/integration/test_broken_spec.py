"""A broken spec is its own model's problem: every command and Beat task goes on with the others."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import redis

from tests.conftest import TEST_REDIS
from tests.integration.conftest import ALL_MODELS
from tests.integration.workers import closing_client_app, running_worker, worker_env

BROKEN_SPEC = """
target = "won"
quality_gate = 0.5
[bands]
hot = 70
warm = 40
[fallback]
intercept = 0.0
[[features]]
name = "budget"
kind = "numeric"
min = 10
max = 1
"""


def _leadscore(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cli = str(Path(sys.executable).parent / "leadscore")
    return subprocess.run([cli, *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_spec_with_min_above_max_is_reported_for_its_model_and_the_others_go_on(
    redis_available: None, models_dir: Path, tmp_path: Path
) -> None:
    # Given the registered models plus one whose spec has min > max
    root = tmp_path / "models"
    shutil.copytree(models_dir, root)
    (root / "broken").mkdir()
    (root / "broken" / "spec.toml").write_text(BROKEN_SPEC)
    # (own databases; the retrains retrain_all sends are kept small and hold their leases there)
    env = worker_env(models_dir=str(root), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14",
                     lock_url=f"{TEST_REDIS}/13", retrain_base_rows="1000", retrain_folds="2")
    _flush(13, 14)

    # When the listing runs
    listed = _leadscore(env, "models")

    # Then every good model is listed, the broken one is named with its problem, and no traceback
    assert "Traceback" not in listed.stderr, listed.stderr
    for name in ALL_MODELS:
        assert f"{name}  (champion: v1)" in listed.stdout
    assert "broken  BROKEN: SpecError: spec of model 'broken': feature 'budget' has min > max" in listed.stdout
    assert listed.returncode == 1

    with closing_client_app(env) as app, running_worker(env, tmp_path / "w.log", queues="training,batch", concurrency=1):
        # When the drift check (Beat's daily task, and the command) and Beat's prewarm and retrain_all run
        drift = _leadscore(env, "drift", "--timeout", "60")
        prewarm = app.send_task("leadscore.prewarm_cache", queue="batch").get(timeout=60)
        retrain_all = app.send_task("leadscore.retrain_all").get(timeout=60)

    # Then each reports the broken model as such and the others as usual
    assert drift.returncode == 0, drift.stderr
    report = json.loads(drift.stdout)
    assert report["broken"] == {"error": "SpecError: spec of model 'broken': feature 'budget' has min > max"}
    assert all("error" not in report[name] for name in ALL_MODELS) and set(ALL_MODELS) <= set(report)
    assert prewarm["broken"]["error"].startswith("SpecError") and all("error" not in prewarm[n] for n in ALL_MODELS)
    assert retrain_all["broken"] == {"broken": "SpecError: spec of model 'broken': feature 'budget' has min > max"}
    assert sorted(retrain_all["sent"]) == sorted(ALL_MODELS)
    _flush(13, 14)


def _flush(*dbs: int) -> None:
    for db in dbs:
        with redis.Redis.from_url(f"{TEST_REDIS}/{db}") as client:
            client.flushdb()
