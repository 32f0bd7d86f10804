"""``python -m bench [--quick] [--out FILE] [--sections a,b]``: measure, then write the report."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path

from celery import Celery

from bench.context import BENCH_QUEUES, MODEL, BenchContext, served_models, worker_env
from bench.report import Section, git_revision, machine, now_utc, redis_version, render, splice, splice_block
from bench.sections import SECTIONS
from bench.workers import REPO, WorkerPool, worker_argv
from leadscore.app import create_app
from leadscore.cli.card_text import estimate_text
from leadscore.settings import Settings, get_settings
from leadscore.stores.state import registry as state_registry
from ml_core.errors import ModelNotFoundError
from ml_core.lifecycle import train_and_register
from ml_core.registry import Registry
from ml_core.store.state import StateStore, embedded_url

QUICK_BANNER = (
    "> **Quick smoke run** (`--quick`): reduced sizes on a machine that may be busy. These figures show the "
    "harness works; they are not results. Run `scripts/bench` without `--quick` on a quiet machine for those."
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every section")
    parser.add_argument("--out", type=Path, default=None, help="report path (default BENCHMARKS.md; quick: .run/bench/BENCHMARKS.quick.md)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument(
        "--splice", action="store_true", help="write only these sections into the report, replacing their earlier block, keeping the rest"
    )
    args = parser.parse_args(argv)
    names = [s for s in args.sections.split(",") if s]
    unknown = sorted(set(names) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {list(SECTIONS)}")
    base = get_settings()
    run_dir = Path(base.run_dir) / "bench"
    run_dir.mkdir(parents=True, exist_ok=True)
    out = args.out or (run_dir / "BENCHMARKS.quick.md" if args.quick else REPO / "BENCHMARKS.md")

    with tempfile.TemporaryDirectory(prefix="leadscore-bench-") as scratch:
        models_dir, database_url = _models_dir(base, Path(scratch))
        settings = base.model_copy(update={**BENCH_QUEUES, "models_dir": models_dir, "database_url": database_url, "run_dir": run_dir})
        registry = state_registry(settings)
        app = create_app(settings)
        env = worker_env(dict(os.environ), settings, served_models(registry))
        workers = WorkerPool(settings, env, app, run_dir / "logs")
        ctx = BenchContext(args.quick, settings, env, app, workers, registry, run_dir)
        started = time.perf_counter()
        _purge(app, settings)
        sections: list[Section] = []
        try:
            workers.start()
            for name in names:
                module = importlib.import_module(f"bench.{name}")
                print(f"bench: {module.TITLE} ...", file=sys.stderr, flush=True)
                sections.append(module.run(ctx))
        finally:
            workers.stop()
            _purge(app, settings)
        header = [QUICK_BANNER, ""] if args.quick else []
        header += [
            f"Written by `{_command(args)}` on {now_utc()} at commit {git_revision()}, in {time.perf_counter() - started:.0f} s. "
            "Every figure below was measured in this run; ratios compare runs of the same moment.",
        ]
        with app.backend.client as client:
            setup = [*machine(), ("Redis server", redis_version(client)), ("broker", _redacted(settings.broker_url))]
        card = registry.card(MODEL, registry.champion(MODEL))
        setup += [
            ("model", f"{MODEL} {card['version']} ({card['family']}, {estimate_text(card['metrics'])})"),
            ("chunk size / window", f"{settings.batch_chunk_size} leads / {settings.bulk_window_chunks} chunks per chord"),
            ("scoring worker", " ".join(worker_argv(settings, "worker-scoring", workers.metrics_ports["worker-scoring"])[1:])),
            ("batch worker", " ".join(worker_argv(settings, "worker-batch", workers.metrics_ports["worker-batch"])[1:])),
        ]
        if args.splice:
            block = splice_block(names, sections, setup, f"{now_utc()} at commit {git_revision()}", _command(args))
            out.write_text(splice(out.read_text() if out.exists() else "", names, block))
        else:
            out.write_text(render(sections, header=header, setup=setup))
    print(f"bench: wrote {out}", file=sys.stderr)
    return 0


def _models_dir(settings: Settings, scratch: Path) -> tuple[Path, str]:
    """The configured models and store, or, when lead_scorer has no champion yet, one trained for the run."""
    try:
        state_registry(settings).champion(MODEL)
        return Path(settings.models_dir), settings.state_url
    except ModelNotFoundError:
        pass
    print(f"bench: {MODEL} has no champion in {settings.models_dir}; training one into a scratch directory", file=sys.stderr)
    root = scratch / "models"
    (root / MODEL).mkdir(parents=True)
    (root / MODEL / "spec.toml").write_bytes((Path(settings.models_dir) / MODEL / "spec.toml").read_bytes())
    train_and_register(Registry(root, StateStore(embedded_url(root))), MODEL, rows=20_000)
    return root, embedded_url(root)


def _purge(app: Celery, settings: Settings) -> None:
    """Drop leftovers of an interrupted earlier run from the bench's own queues (only those)."""
    with app.connection_for_write() as conn:
        for queue in (settings.scoring_queue, settings.batch_queue, settings.deep_queue):
            try:
                with conn.channel() as channel:
                    channel.queue_purge(queue)
            except conn.channel_errors:
                pass  # RabbitMQ: the queue does not exist yet, so nothing to purge


def _command(args: argparse.Namespace) -> str:
    parts = ["scripts/bench"] + (["--quick"] if args.quick else [])
    if args.sections != ",".join(SECTIONS):
        parts += ["--sections", args.sections]
    if args.splice:
        parts.append("--splice")
    return " ".join(parts)


def _redacted(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


if __name__ == "__main__":
    sys.exit(main())
