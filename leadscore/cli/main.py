"""The ``leadscore`` command line."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click

from leadscore.cli.card_text import candidate_table, estimate_text
from leadscore.cli.params import MODEL
from leadscore.settings import get_settings
from leadscore.stores.event_types import EventType
from leadscore.stores.state import registry as state_registry
from ml_core import rollout
from ml_core.errors import LeadscoreError, ModelNotFoundError
from ml_core.identifiers import DEFAULT_MODEL
from ml_core.registry import Registry
from ml_core.spec import available_models, load_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PAIR_EXAMPLES = EXAMPLES / "property_matching"


def example(model: str) -> dict[str, Any]:
    """The example lead of ``model`` (``examples/<model>/lead.json``), for ``--sample``."""
    path = EXAMPLES / model / "lead.json"
    if not path.is_file():
        if (EXAMPLES / "property_matching").is_dir() and load_spec(get_settings().models_dir, model).featurizer:
            raise click.UsageError(f"{model} scores (lead, property) pairs: try `leadscore match --sample`")
        raise click.UsageError(f"no example lead for {model} (looked for examples/{model}/lead.json)")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _say_progress(model: str, message: str) -> None:
    click.echo(f"{model}: {message}", err=True)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group()
def main() -> None:
    """leadscore: lead scoring served by Celery workers."""


@main.command()
@click.argument("models", nargs=-1, type=MODEL)
@click.option("--data", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV, Parquet or JSON-lines table matching the spec (JSON lines: labelled leads, as features or conversations); synthetic data if omitted.")
@click.option("--rows", default=20_000, show_default=True, help="Synthetic rows to generate.")
@click.option("--seed", default=42, show_default=True)
@click.option("--folds", default=5, show_default=True, help="Cross-validation folds.")
@click.option("--repeats", default=None, type=click.IntRange(min=1), help="Repeats of the K-fold (default: 3 up to 2,000 rows, 2 up to 10,000, then 1).")
@click.option("--holdout", default=0.0, show_default=True, type=click.FloatRange(0.0, 0.5, max_open=True),
              help="Share of rows set aside for the gate, never fitted (default: none; out-of-fold evaluation, refit on every row).")
@click.option("--time-budget", default=60.0, show_default=True, type=click.FloatRange(min=1.0), help="Seconds that size the booster's tuning search.")
@click.option("--families", default=None, help="Comma-separated candidate families (default: logistic_regression,gradient_boosting,blend; mlp on request).")
@click.option("--quiet", is_flag=True, help="No per-fold progress, only the result tables.")
@click.option("--if-missing", is_flag=True, help="Only train models that have no champion yet.")
def train(
    models: tuple[str, ...], data: Path | None, rows: int, seed: int, folds: int, repeats: int | None, holdout: float,
    time_budget: float, families: str | None, quiet: bool, if_missing: bool,
) -> None:
    """Train, gate and register MODELS (default: every spec in the models directory)."""
    from ml_core.lifecycle import train_and_register

    settings = get_settings()
    registry = state_registry(settings)
    failed = False
    for name in models or available_models(settings.models_dir):
        started = time.perf_counter()
        try:
            if if_missing and _has_champion(registry, name):
                click.echo(f"{name}: champion {registry.champion(name)} already registered, skipping")
                continue
            card = train_and_register(
                registry, name, data=data, rows=rows, seed=seed, folds=folds, repeats=repeats, holdout=holdout, time_budget=time_budget,
                families=families.split(",") if families else None, parity_tolerance=settings.parity_tolerance,
                progress=None if quiet else functools.partial(_say_progress, name),
            )
        except (LeadscoreError, ValueError) as exc:
            click.echo(f"{name}: {exc}", err=True)
            failed = True
            continue
        m = card["metrics"]
        click.echo(
            f"{name}: registered {card['version']} ({card['family']}), {estimate_text(m)} "
            f"(gate {m['quality_gate']}), ONNX parity {m['parity_max_abs_diff']:.1e}, {time.perf_counter() - started:.1f}s"
        )
        for line in candidate_table(card):
            click.echo(f"  {line}")
    sys.exit(1 if failed else 0)


def _has_champion(registry: Registry, name: str) -> bool:
    try:
        registry.champion(name)
    except ModelNotFoundError:
        return False
    return True


@main.command("models")
def list_models() -> None:
    """List models, their versions (champion *, challenger c with its mode), and the champion's
    candidate table; a broken model or card is named and the others still listed (exit 1)."""
    settings = get_settings()
    registry = state_registry(settings)
    broken = False
    for name in available_models(settings.models_dir):
        try:
            champion = registry.champion(name) if _has_champion(registry, name) else None
        except LeadscoreError as exc:
            click.echo(f"{name}  BROKEN: {exc.__class__.__name__}: {exc}")
            broken = True
            continue
        click.echo(f"{name}  (champion: {champion or 'none, serving rules'})")
        try:
            challenger = rollout.challenger(registry, name)
        except LeadscoreError:
            challenger = None
        for version in registry.versions(name):
            mark = "*" if version == champion else "c" if challenger is not None and version == challenger.version else " "
            mode = f"  challenger, {challenger.mode}" if mark == "c" and challenger is not None else ""
            try:
                card = registry.card(name, version)
                estimate = estimate_text(card["metrics"])
                click.echo(f"  {mark} {version}  {card['created_at']}  {card['family']:<20} {estimate}  data {card['data']['source']}{mode}")
            except (LeadscoreError, KeyError, TypeError) as exc:  # one bad card must not hide the rest
                click.echo(f"  {mark} {version}  BROKEN: {exc.__class__.__name__}: {exc}")
                broken = True
        if champion:
            try:
                for line in candidate_table(registry.card(name, champion)):
                    click.echo(f"      {line}")
            except LeadscoreError:
                pass  # reported above with its version
    sys.exit(1 if broken else 0)


@main.command()
@click.argument("lead_json", required=False)
@click.option("--sample", is_flag=True, help="Score a built-in sample lead.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, type=MODEL)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the worker.")
def score(lead_json: str | None, sample: bool, model: str, timeout: float) -> None:
    """Score one lead through the running workers. LEAD_JSON is a JSON object, or - for stdin."""
    from leadscore import score_lead

    if sample:
        lead = example(model)
    elif lead_json is None:
        raise click.UsageError("give LEAD_JSON, - for stdin, or --sample")
    else:
        text = sys.stdin.read() if lead_json == "-" else lead_json
        try:
            lead = json.loads(text)
        except json.JSONDecodeError as exc:
            raise click.UsageError(f"LEAD_JSON is not valid JSON: {exc}") from None
    try:
        _echo_json(score_lead.delay(lead, model=model).get(timeout=timeout))
    except LeadscoreError as exc:
        click.echo(f"{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.argument("lead_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("properties_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sample", is_flag=True, help="Use examples/property_matching/{lead,properties}.json.")
@click.option("--top-k", default=5, show_default=True)
@click.option("--timeout", default=10.0, show_default=True, help="Seconds to wait for the worker.")
def match(lead_file: Path | None, properties_file: Path | None, sample: bool, top_k: int, timeout: float) -> None:
    """Rank the listings of PROPERTIES_FILE (a JSON array) for the lead of LEAD_FILE (a JSON object
    with ``preferences``) by all three pair models, through the running workers."""
    from leadscore import recommend_properties

    if sample:
        lead_file, properties_file = PAIR_EXAMPLES / "lead.json", PAIR_EXAMPLES / "properties.json"
    elif lead_file is None or properties_file is None:
        raise click.UsageError("give LEAD_FILE and PROPERTIES_FILE, or --sample")
    try:
        lead, properties = json.loads(lead_file.read_text()), json.loads(properties_file.read_text())
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"not valid JSON: {exc}") from None
    try:
        _echo_json(recommend_properties.delay(lead, properties, top_k=top_k).get(timeout=timeout))
    except LeadscoreError as exc:
        click.echo(f"{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--queue", default=None, help="Queue to send the ping through (default: scoring).")
@click.option("--timeout", default=10.0, show_default=True)
def ping(queue: str | None, timeout: float) -> None:
    """Prove a worker consumes QUEUE by round-tripping a real task through it (exit 1 if not)."""
    from leadscore import ping as ping_task

    queue = queue or get_settings().scoring_queue
    try:
        pong = ping_task.apply_async(queue=queue, expires=timeout).get(timeout=timeout)
    except Exception as exc:  # a health check reports every failure the same way
        click.echo(f"{queue}: no answer within {timeout:.0f}s ({exc.__class__.__name__})", err=True)
        sys.exit(1)
    click.echo(f"{queue}: pong from {pong['hostname']} pid {pong['pid']}, models {json.dumps(pong['models'])}")


@main.group()
def events() -> None:
    """Scoring events on Redis Streams."""


@events.command("tail")
@click.option("--type", "types", multiple=True, type=click.Choice([t.value for t in EventType]),
              help="Event types to show (repeatable; default: scored, escalated, cache_hit).")
@click.option("--count", default=None, type=click.IntRange(min=1), help="Stop after this many events.")
@click.option("--timeout", default=None, type=click.FloatRange(min=0), help="Stop after this many seconds.")
@click.option("--from-start", is_flag=True, help="Replay what each stream still holds before following it.")
def events_tail(types: tuple[str, ...], count: int | None, timeout: float | None, from_start: bool) -> None:
    """Print events as JSON lines as they arrive (Ctrl-C to stop, or --count / --timeout)."""
    from leadscore.stores.events import EVENT_TYPES, tail

    settings = get_settings()
    url = settings.events_url or settings.cache_url
    for event in tail(url, types or EVENT_TYPES, count=count or sys.maxsize, timeout=timeout or 365 * 86400.0, from_start=from_start):
        click.echo(json.dumps(event))


@main.group()
def cache() -> None:
    """The prediction cache."""


@cache.command("stats")
def cache_stats() -> None:
    """Hits, misses and hit rate per model, as counted by the web services' ScoreClient."""
    from leadscore.stores.cache import PredictionCache
    from leadscore.stores.optional_redis import OptionalRedis

    settings = get_settings()
    store = OptionalRedis(settings.cache_url, timeout=2.0, retry_after=0.0, role="cache")
    if store.call(lambda r: r.ping()) is None:
        raise click.ClickException("the cache Redis is not reachable")
    for model, counts in sorted(PredictionCache(store, settings.cache_ttl_seconds).stats().items()):
        looked_up = counts["hits"] + counts["misses"]
        rate = f"{counts['hits'] / looked_up:.1%}" if looked_up else "n/a"
        click.echo(f"{model}: {counts['hits']} hits, {counts['misses']} misses, hit rate {rate}")


@main.command()
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for each queue's ping.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw status as JSON.")
def status(timeout: float, as_json: bool) -> None:
    """Workers proven alive through every queue, models and breakers, queue depths, cache and latency."""
    from leadscore import app
    from leadscore.cli.status import gather

    report = gather(app, get_settings(), timeout)
    if as_json:
        _echo_json(report)
    else:
        for queue, w in report["workers"].items():
            depth = report["queues"].get(queue)
            line = f"{queue:<9} depth {depth if depth is not None else '?':>6}  "
            if not w["alive"]:
                click.echo(line + f"NO WORKER answered ({w['error']})")
                continue
            models = ", ".join(f"{m} {d['version']} ({d['served_by']}, breaker {d['breaker']})" for m, d in w["models"].items())
            served = f"  metrics :{w['metrics_port']}" if w["metrics_port"] else ""
            click.echo(line + f"alive: {w['hostname']} pid {w['pid']}{served}  {models or 'no model loaded yet'}")
        for model, c in report["cache"].items():
            click.echo(f"cache    {model}: {c['hits']} hits, {c['misses']} misses, hit rate {c['hit_rate']}")
        for model, lat in report["latency"].items():
            click.echo(f"latency  {model}: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms (last {lat['samples']} scores)")
        for model, versions in report["traffic"].items():
            for version, t in versions.items():
                click.echo(f"traffic  {model} {version}: {_mix_line(t)}")
    if not all(w["alive"] for w in report["workers"].values()):
        sys.exit(1)


def _mix_line(t: dict[str, Any]) -> str:
    """Realized shares of the recent leads, with the card's out-of-fold value in brackets."""
    e = t["expected"]
    escalated = f"escalated {t['escalated']:.1%}" + (f" (card {e['escalated']:.1%})" if e else "")
    bands = ", ".join(f"{b} {t['bands'][b]:.1%}" + (f" ({e['bands'][b]:.1%})" if e else "") for b in ("hot", "warm", "cold"))
    return f"{escalated}; {bands} (last {t['leads']} leads)"


@main.command("metrics")
def metrics_exporter() -> None:
    """Serve the fleet's Prometheus metrics (cache lookups, recent traffic mix) at /metrics until stopped.

    Each worker serves its own at its --metrics-port; one of these serves the fleet's."""
    import threading

    from leadscore.exporter import serve

    settings = get_settings()
    serve(settings)
    click.echo(f"serving the fleet's metrics at http://{settings.metrics_address}:{settings.metrics_port}/metrics")
    threading.Event().wait()


@main.group()
def stack() -> None:
    """Run the local stack: a worker per queue, Beat and Flower."""


@stack.command("start")
@click.option("--wait", default=60.0, show_default=True, help="Seconds to wait until a real task completes.")
def stack_start(wait: float) -> None:
    from leadscore import ping
    from leadscore.cli.stack import start

    settings = get_settings()
    for name, pid in start(settings).items():
        click.echo(f"started {name} (pid {pid}, log {Path(settings.run_dir) / (name + '.log')})")
    deadline = time.monotonic() + wait
    while True:  # bounded: a real ping task must round-trip through the scoring queue
        try:
            pong = ping.delay().get(timeout=5)
            break
        except Exception as exc:  # any failure here means "not up yet"
            if time.monotonic() > deadline:
                raise click.ClickException(f"no worker answered within {wait:.0f}s ({exc.__class__.__name__}); see the logs in {settings.run_dir}") from None
    click.echo(f"workers up (pong from {pong['hostname']} pid {pong['pid']}); Flower at http://{settings.flower_address}:{settings.flower_port}")


@stack.command("stop")
def stack_stop() -> None:
    from leadscore.cli.stack import stop

    for name in stop(get_settings()):
        click.echo(f"stopped {name}")


@stack.command("status")
def stack_status() -> None:
    from leadscore.cli.stack import status

    for name, pid in status(get_settings()).items():
        click.echo(f"{name:<16} {'running, pid ' + str(pid) if pid else 'stopped'}")


@stack.command("exec")
@click.argument("process")
def stack_exec(process: str) -> None:
    """Replace this process with one of the stack's processes (what docker-compose runs)."""
    from leadscore.cli.stack import commands

    argv = commands(get_settings()).get(process)
    if argv is None:
        raise click.UsageError(f"unknown process {process!r}; one of {sorted(commands(get_settings()))}")
    os.execvp(argv[0], argv)


from leadscore.cli.bulk import bulk, score_file  # noqa: E402 - bulk commands live in their own module

main.add_command(score_file)
main.add_command(bulk)

from leadscore.cli.spec import spec  # noqa: E402 - spec commands live in their own module

main.add_command(spec)

from leadscore.cli.db import db  # noqa: E402 - the state store's commands live in their own module

main.add_command(db)


def _add_lifecycle_commands() -> None:
    from leadscore.cli.lifecycle import COMMANDS

    for command in COMMANDS:
        main.add_command(command)


_add_lifecycle_commands()
