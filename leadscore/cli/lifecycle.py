"""``leadscore`` commands of the model lifecycle: outcomes, retraining, rollout, history, reports, drift.

Commands that change something send the task to the training queue and wait for its result, so
the change is made by a training worker, with its event and its history entry, in the state store
every host reads; ``history`` and ``report`` read the state store directly.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from leadscore.cli.card_text import estimate_text
from leadscore.cli.params import MODEL
from leadscore.stores.state import registry as state_registry
from ml_core import rollout
from ml_core.errors import LeadscoreError
from ml_core.identifiers import DEFAULT_MODEL

TIMEOUT = click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for the training worker.")


def _run(task: str, *args: Any, timeout: float, **kwargs: Any) -> Any:
    from leadscore import app

    try:
        return app.send_task(task, args=list(args), kwargs=kwargs).get(timeout=timeout)
    except LeadscoreError as exc:
        click.echo(f"{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(2)


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.command()
@click.argument("lead_id")
@click.argument("outcome", type=click.Choice(["1", "0", "true", "false"]))
@click.argument("occurred_at")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, type=MODEL)
@click.option("--property", "property_id", default=None, help="The property, for a model that scores (lead, property) pairs.")
@TIMEOUT
def outcome(lead_id: str, outcome: str, occurred_at: str, model: str, property_id: str | None, timeout: float) -> None:
    """Record OUTCOME (1/true: converted, churned, interested...) of LEAD_ID at OCCURRED_AT (ISO 8601 with a timezone)."""
    _echo(_run("leadscore.record_outcome", lead_id, outcome in ("1", "true"), occurred_at, model=model,
               property_id=property_id, timeout=timeout))


@click.command()
@click.argument("model", type=MODEL)
@click.option("--lead", "lead_id", default=None, help="Also print this lead's recorded outcome and features.")
@click.option("--property", "property_id", default=None, help="With --lead, for a pair model: the property.")
@TIMEOUT
def outcomes(model: str, lead_id: str | None, property_id: str | None, timeout: float) -> None:
    """How many outcomes MODEL has (with and without scored features, positive), and one lead's row."""
    _echo(_run("leadscore.outcome_status", model, lead_id, property_id, timeout=timeout))


@click.command()
@click.argument("model", type=MODEL)
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds to wait for the retrain.")
def retrain(model: str, timeout: float) -> None:
    """Retrain MODEL from its outcomes; a model that passes every gate becomes the challenger."""
    _echo(_run("leadscore.retrain", model, timeout=timeout))


@click.command("rollout")
@click.argument("model", type=MODEL)
@click.argument("mode", type=click.Choice(list(rollout.MODES)))
@click.option("--percent", default=10.0, show_default=True, help="Canary: share of leads the challenger serves.")
@TIMEOUT
def set_rollout(model: str, mode: str, percent: float, timeout: float) -> None:
    """Put MODEL's challenger in shadow, canary (--percent of leads, by lead id) or none."""
    _echo(_run("leadscore.set_rollout", model, mode, percent, timeout=timeout))


@click.command("challenger")
@click.argument("model", type=MODEL)
@click.argument("version")
@click.option("--mode", type=click.Choice(list(rollout.MODES)), default="none", show_default=True)
@click.option("--percent", default=10.0, show_default=True, help="Canary: share of leads the challenger serves.")
@TIMEOUT
def set_challenger(model: str, version: str, mode: str, percent: float, timeout: float) -> None:
    """Make VERSION of MODEL the challenger (any registered version, a rolled-back one included)."""
    _echo(_run("leadscore.set_challenger", model, version, mode, percent, timeout=timeout))


@click.command()
@click.argument("model", type=MODEL)
@TIMEOUT
def promote(model: str, timeout: float) -> None:
    """Make MODEL's challenger the champion (workers serve it within reload_check_seconds)."""
    _echo(_run("leadscore.promote", model, timeout=timeout))


@click.command()
@click.argument("model", type=MODEL)
@TIMEOUT
def rollback(model: str, timeout: float) -> None:
    """Return MODEL to the champion before the current one."""
    _echo(_run("leadscore.rollback", model, timeout=timeout))


@click.command()
@click.argument("model", type=MODEL)
def history(model: str) -> None:
    """MODEL's history: retrains (with their gates), challengers, modes, promotions, rollbacks."""
    try:
        entries = rollout.history(state_registry(), model)
    except LeadscoreError as exc:
        raise click.ClickException(f"{exc.__class__.__name__}: {exc}") from None
    for entry in entries:
        click.echo(json.dumps(entry))


@click.command()
@click.argument("model", type=MODEL)
@click.argument("version", required=False)
def report(model: str, version: str | None) -> None:
    """Where MODEL's version report is (the champion's by default), and its headline numbers."""
    registry = state_registry()
    try:
        version = version or registry.champion(model)
        card = registry.card(model, version)
        where = registry.version_dir(model, version)
    except LeadscoreError as exc:
        raise click.ClickException(str(exc)) from None
    if not (where / "report.md").exists():
        raise click.ClickException(f"{model} {version} has no report (registered before reports existed)")
    m = card["metrics"]
    click.echo(f"{model} {version}: {where / 'report.md'} (plots: {', '.join(f for f in card.get('report', []) if f.endswith('.png'))})")
    rows = m.get("evaluation_rows", m.get("holdout_rows"))
    click.echo(f"  family {card['family']}, {estimate_text(m)}, AUC {m['roc_auc']:.4f}, "
               f"log loss {m['log_loss']:.4f}, Brier {m['brier']:.4f}, {rows} rows; data {card['data']['source']}")
    for gate in card.get("gates", []):
        click.echo(f"  gate {gate['name']}: {'pass' if gate['passed'] else 'FAIL'}: {gate['detail']}")
    if card.get("optimization"):
        click.echo(f"  served artifact: {card['optimization']['kind']}: {card['optimization']['reason']}")
    if card.get("decision"):
        e, b = card["decision"]["escalation"], card["decision"]["bands"]
        accuracy = "n/a" if e["fast_path_accuracy"] is None else f"{e['fast_path_accuracy']:.1%}"
        click.echo(f"  escalation ({e['rule']} {e['requested']:g}): threshold {e['threshold']:.4f}, {e['budget']:.1%} escalated, "
                   f"alpha {e['alpha']:.1%}, fast-path accuracy {accuracy} (out of fold)")
        lifts = ", ".join(f"{label} {row['share']:.0%} {row['lift']:.2f}x" for label, row in b["conversion"].items() if row["lift"] is not None)
        click.echo(f"  bands by {b['by'].replace('_', '-')}: hot >= {b['hot']}, warm >= {b['warm']}; share and lift: {lifts}")


@click.command()
@click.argument("models", nargs=-1, type=MODEL)
@TIMEOUT
def drift(models: tuple[str, ...], timeout: float) -> None:
    """Run the drift check now for MODELS (default: every model)."""
    _echo(_run("leadscore.drift_check", list(models) or None, timeout=timeout))


COMMANDS = (outcome, outcomes, retrain, set_rollout, set_challenger, promote, rollback, history, report, drift)
