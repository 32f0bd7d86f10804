"""``leadscore spec init``: a spec inferred from a table, that trains (issue #10 item 6)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ml_core.errors import DatasetError, SpecError
from ml_core.lifecycle import train_and_register
from ml_core.spec import load_spec
from ml_core.spec_init import infer_spec, write_spec
from tests.blank_tables import blank_table
from tests.stores import registry_at


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    blank_table().to_csv(path, index=False)
    return path


def test_a_table_round_trips_through_spec_init_and_trains(export: Path, tmp_path: Path) -> None:
    # Given a CRM export with numeric, integer, boolean (yes/no) and categorical columns, some blank
    frame = pd.read_csv(export)
    # When spec init writes a spec from it
    path = write_spec(tmp_path / "models", "crm", frame, "won", "lead_id", export.name)
    spec = load_spec(tmp_path / "models", "crm")
    # Then every column got its kind, blanks made features optional, ranges hold the data
    kinds = {f.name: f.kind for f in spec.features}
    assert kinds == {"income": "numeric", "visits": "integer", "mortgage": "boolean", "channel": "categorical", "age": "integer"}
    assert {f.name for f in spec.features if f.may_be_missing} == {"income", "visits", "mortgage", "channel"}
    age = spec.features[-1]
    assert age.required and age.min <= frame["age"].min() and age.max >= frame["age"].max()
    assert (age.min, age.max) == (20 - 6, 74 + 6)  # 10% of the span 54, rounded out
    channel = spec.features[3]
    assert set(channel.categories) == {"ads", "referral", "walk_in"} and channel.unseen == "other"
    assert spec.fallback is None
    text = path.read_text()
    assert text.count("[[features]]") == 5 and text.count("\n# integer from") == 2  # one comment per feature
    # and the written spec trains on the same file
    card = train_and_register(registry_at(tmp_path / "models"), "crm", data=export, folds=3)
    assert card["data"]["rows"] == len(frame) and "fallback_rules" in card


@pytest.mark.parametrize("labels", [[0, 1, 2], ["yes", "no", "no"], [0.0, 1.0, 0.5]])
def test_a_target_that_is_not_0_1_is_refused_by_name(labels: list[object]) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": labels})
    with pytest.raises(DatasetError, match="target 'y' is not binary: training needs 0 or 1 in every row") as info:
        infer_spec("m", frame, "y", None, "t.csv")
    assert info.value.model == "m"


def test_a_single_class_target_and_a_missing_target_are_refused() -> None:
    with pytest.raises(DatasetError, match="single class"):
        infer_spec("m", pd.DataFrame({"x": [1, 2], "y": [1, 1]}), "y", None, "t")
    with pytest.raises(DatasetError, match="target column 'won' is not in the table"):
        infer_spec("m", pd.DataFrame({"x": [1, 2], "y": [0, 1]}), "won", None, "t")


def test_columns_that_cannot_be_typed_are_named() -> None:
    y = [0, 1] * 60
    free_text = pd.DataFrame({"note": [f"called on day {i}" for i in range(120)], "y": y})
    with pytest.raises(DatasetError, match="column 'note' has 120 distinct text values"):
        infer_spec("m", free_text, "y", None, "t")
    with pytest.raises(DatasetError, match="column 'empty' is blank in every row"):
        infer_spec("m", pd.DataFrame({"empty": [None] * 120, "y": y}), "y", None, "t")
    assert "note" not in infer_spec("m", free_text.assign(x=1.5), "y", "note", "t")  # --id keeps it out


def test_an_existing_spec_is_kept_unless_forced(export: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(export)
    write_spec(tmp_path / "models", "crm", frame, "won", "lead_id", "e")
    with pytest.raises(SpecError, match="already exists"):
        write_spec(tmp_path / "models", "crm", frame, "won", "lead_id", "e")
    write_spec(tmp_path / "models", "crm", frame, "won", "lead_id", "e", force=True)


def test_the_command_writes_the_spec_and_reports_a_bad_target(export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from leadscore.cli.main import main
    from leadscore.settings import get_settings

    monkeypatch.setenv("LEADSCORE_MODELS_DIR", str(tmp_path / "models"))
    get_settings.cache_clear()
    try:
        ok = CliRunner().invoke(main, ["spec", "init", "crm", "--data", str(export), "--target", "won", "--id", "lead_id"])
        assert ok.exit_code == 0, ok.output
        assert (tmp_path / "models" / "crm" / "spec.toml").is_file() and "leadscore train crm" in ok.output
        bad = CliRunner().invoke(main, ["spec", "init", "other", "--data", str(export), "--target", "income"])
        assert bad.exit_code == 2 and "DatasetError" in bad.output and "target 'income' is not binary" in bad.output
    finally:
        get_settings.cache_clear()
