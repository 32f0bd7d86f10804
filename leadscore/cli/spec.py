"""``leadscore spec init``: write a first spec from a table (``ml_core.spec_init``)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from leadscore.settings import get_settings
from ml_core.errors import LeadscoreError


@click.group()
def spec() -> None:
    """Model specs."""


@spec.command("init")
@click.argument("name")
@click.option("--data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV or Parquet table to infer from.")
@click.option("--target", required=True, help="The 0/1 column to predict.")
@click.option("--id", "id_column", default=None, help="A column that identifies rows (not a feature).")
@click.option("--force", is_flag=True, help="Overwrite an existing spec.")
def spec_init(name: str, data: Path, target: str, id_column: str | None, force: bool) -> None:
    """Infer models/NAME/spec.toml from DATA: kinds, ranges, categories, blanks. Then `leadscore train NAME --data DATA`."""
    from ml_core.dataset import read_table
    from ml_core.spec_init import write_spec

    if not name.isidentifier():
        raise click.UsageError(f"NAME must be an identifier (letters, digits, _), got {name!r}")
    try:
        path = write_spec(get_settings().models_dir, name, read_table(data), target, id_column, data.name, force)
    except LeadscoreError as exc:
        click.echo(f"{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {path}; review it, then: leadscore train {name} --data {data}")
