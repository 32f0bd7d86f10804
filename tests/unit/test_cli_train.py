"""``leadscore train`` shows its work and ``leadscore models`` the same numbers (no services: training only)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from leadscore.cli.main import main
from leadscore.settings import get_settings

from .helpers import MODEL, copy_spec


@pytest.fixture
def models_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    copy_spec(tmp_path / "models")
    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    yield tmp_path / "models"
    get_settings.cache_clear()


def test_train_prints_progress_and_a_candidate_table_that_models_repeats(models_dir: Path) -> None:
    trained = CliRunner().invoke(main, ["train", MODEL, "--rows", "1500", "--folds", "3", "--repeats", "2", "--time-budget", "5"])
    assert trained.exit_code == 0, trained.output
    # progress on stderr: the plan, then every fold with each candidate's score
    assert "3 candidates x 6 folds (3 folds x 2 repeats) on 1,500 rows" in trained.stderr
    assert all(f"fold {i}/6" in trained.stderr for i in range(1, 7))
    table = [line.strip() for line in trained.stdout.splitlines()[1:]]
    assert trained.stdout.startswith(f"{MODEL}: registered v1 (")
    rows = {line.split()[0]: line for line in table[1:4]}
    assert set(rows) == {"logistic_regression", "gradient_boosting", "blend"}
    (chosen,) = [family for family, line in rows.items() if line.endswith("<- chosen")]
    assert table[4].startswith(f"{chosen} chosen because")
    listed = CliRunner().invoke(main, ["models"])
    assert listed.exit_code == 0, listed.output
    assert [line.strip() for line in listed.stdout.splitlines()[2:]] == table


def test_unknown_family_is_a_clear_error(models_dir: Path) -> None:
    result = CliRunner().invoke(main, ["train", MODEL, "--rows", "500", "--families", "forest"])
    assert result.exit_code == 1 and "unknown model families ['forest']" in result.stderr
