from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import importlib, pkgutil, sys
import ml_core
# Alembic's migration scripts run inside Alembic only, never as imports
names = sorted(m.name for m in pkgutil.walk_packages(ml_core.__path__, "ml_core.") if not m.name.startswith("ml_core.store.migrations."))
for name in names:
    importlib.import_module(name)
# shap too: only explaining loads it (~0.2 s), never an import
leaked = sorted(m for m in ("celery", "kombu", "billiard", "redis", "shap") if m in sys.modules)
assert not leaked, f"ml_core imported {leaked}"
print("\\n".join(names))
"""

EXPECTED = {
    "ml_core.cache_entry",
    "ml_core.dataset",
    "ml_core.errors",
    "ml_core.explain",
    "ml_core.fallback",
    "ml_core.features",
    "ml_core.lifecycle",
    "ml_core.onnx_model",
    "ml_core.pool",
    "ml_core.registry",
    "ml_core.scoring",
    "ml_core.spec",
    "ml_core.synthetic",
    "ml_core.synthetic.lead_scorer",
    "ml_core.training",
}


def test_ml_core_imports_no_celery(tmp_path):
    # A fresh interpreter: this test process may already hold Celery from other tests.
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) >= EXPECTED


TRAINING_STACK = ("sklearn", "scipy", "pandas", "pyarrow", "skl2onnx", "onnx", "shap", "matplotlib", "joblib")
IMPORTED = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(",".join(sorted(m for m in {stack!r} if m in sys.modules)))
"""


def loaded_by(*modules: str) -> str:
    code = IMPORTED.format(stack=TRAINING_STACK)
    proc = subprocess.run([sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_web_client_loads_no_training_stack() -> None:
    # What a web service imports: the client, and the tasks it calls
    assert loaded_by("leadscore.client", "leadscore") == ""
    assert loaded_by("leadscore.client.score_client") == ""


def test_scoring_workers_load_no_training_stack_at_start() -> None:
    # What a worker imports before any task runs: the app, every task module it includes, the runtime
    from leadscore import app

    assert loaded_by("leadscore", "leadscore.worker.process", *app.conf.include) == ""


def test_the_cli_loads_no_training_stack_for_help() -> None:
    assert loaded_by("leadscore.cli.main") == ""


def test_the_web_client_and_the_cli_load_no_database_library_at_import() -> None:
    # The state store is opened on first use (a canary decision, a lifecycle command), never by an import
    code = "import sys, leadscore, leadscore.client, leadscore.cli.main; print(','.join(m for m in ('sqlalchemy', 'alembic', 'psycopg') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
