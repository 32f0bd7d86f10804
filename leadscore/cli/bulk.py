"""``leadscore score-file`` and ``leadscore bulk ...``: bulk jobs from the command line.

Exit codes of ``score-file``: 0 every row scored; 1 some rows invalid (reported, all others
scored); 2 the input cannot be read at all (format, header, unknown model); 3 the job failed or
stalled (it is kept: ``leadscore bulk resume JOB``, or ``score-file ... --job JOB`` to go on).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import click

from leadscore.cli.params import MODEL
from leadscore.client.bulk import DEFAULT_MODEL, BulkJob, ResultStream, bulk_score
from leadscore.stores.bulk import Progress
from ml_core.errors import BulkJobError, LeadscoreError
from ml_core.lead_files import count_rows_estimate
from ml_core.result_files import ResultWriter

EXIT_INVALID_ROWS, EXIT_UNREADABLE, EXIT_JOB_STOPPED = 1, 2, 3


@click.command("score-file")
@click.argument("leads", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Results file, .csv, .parquet or .jsonl.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, type=MODEL)
@click.option("--job", "job_id", default=None, help="Continue this earlier job over the same file instead of starting anew.")
@click.option("--chunk-size", type=click.IntRange(1, 100_000), default=None, help="Leads per chunk (default: LEADSCORE_BATCH_CHUNK_SIZE).")
@click.option("--show-errors", default=20, show_default=True, help="Invalid rows listed on stderr (all are in --out).")
@click.option("--timeout", default=None, type=float, help="Give up waiting after this many seconds (the job is kept).")
def score_file(leads: Path, out: Path, model: str, job_id: str | None, chunk_size: int | None, show_errors: int, timeout: float | None) -> None:
    """Score every lead of LEADS (CSV, Parquet, or JSON lines: features or conversations) through the batch workers into --out."""
    started = time.perf_counter()
    try:
        job = BulkJob(job_id or uuid.uuid4().hex)
        writer = ResultWriter(out)
        estimate = count_rows_estimate(leads)
    except LeadscoreError as exc:
        click.echo(f"{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    click.echo(f"job {job.id}: {leads.name} -> {out.name}", err=True)
    try:
        with writer, click.progressbar(length=max(estimate, 1), label="scoring", file=sys.stderr) as bar:
            stream = ResultStream(job, writer, keep_errors=show_errors)

            def on_progress(progress: Progress) -> None:
                bar.update(max(progress.leads_done - bar.pos, 0))
                stream.drain()

            bulk_score(leads, model=model, job_id=job.id, chunk_size=chunk_size, app=job.app, on_progress=on_progress)
            summary = job.wait(timeout=timeout, on_progress=on_progress)
            stream.drain()
            if stream.next_chunk != summary["chunks"]:
                raise BulkJobError(job.id, f"wrote {stream.next_chunk} of {summary['chunks']} chunks")
    except BulkJobError as exc:
        click.echo(f"\n{exc}", err=True)
        click.echo(f"continue with: leadscore score-file {leads} --out {out} --job {job.id}", err=True)
        sys.exit(EXIT_JOB_STOPPED)
    except LeadscoreError as exc:
        click.echo(f"\n{exc.__class__.__name__}: {exc}", err=True)
        sys.exit(EXIT_UNREADABLE)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; job {job.id} is kept: leadscore score-file {leads} --out {out} --job {job.id}", err=True)
        sys.exit(130)
    print_summary(summary, time.perf_counter() - started)
    click.echo(f"results: {out} ({writer.rows:,} rows)")
    if summary["invalid"]:
        _report_invalid(stream.errors, summary["invalid"], out)
        sys.exit(EXIT_INVALID_ROWS)


def _report_invalid(errors: list[dict[str, Any]], total: int, out: Path) -> None:
    click.echo(f"{total:,} invalid rows (not scored; each has its error in the 'error' column of {out.name}):", err=True)
    for row in errors:
        click.echo(f"  row {row['row']}: {row['error']}", err=True)
    if total > len(errors):
        click.echo(f"  ... and {total - len(errors):,} more", err=True)


def print_summary(summary: dict[str, Any], seconds: float | None = None) -> None:
    leads = summary["leads"]
    rate = f" in {seconds:.1f}s ({leads / seconds:,.0f} leads/s)" if seconds else ""
    click.echo(f"\njob {summary['job_id']}  model {summary['model']}  {leads:,} leads{rate}")
    click.echo(
        f"  scored {summary['scored']:,}   invalid {summary['invalid']:,}   escalated {summary['escalated']:,}   "
        f"served by {', '.join(f'{k} {v:,}' for k, v in summary['served_by'].items()) or 'none'}"
    )
    if summary["fallback_reasons"]:
        reasons = "; ".join(summary["fallback_reasons"])
        click.echo(f"  WARNING rule-based fallback served some leads: {reasons}")
    scored = max(summary["scored"], 1)
    click.echo("  label   count        share")
    for label, count in summary["labels"].items():
        click.echo(f"  {label:<6} {count:>10,}   {100 * count / scored:6.1f} %")
    pct = "  ".join(f"{k} {v:g}" for k, v in summary["score_percentiles"].items() if v is not None)
    click.echo(f"  score   mean {summary['score_mean']}   {pct}")
    top = max((b["count"] for b in summary["score_histogram"]), default=0) or 1
    for b in summary["score_histogram"]:
        click.echo(f"  {b['from']:>3}-{b['to']:<3} {b['count']:>10,}  {'#' * round(40 * b['count'] / top)}")


@click.group()
def bulk() -> None:
    """Inspect, resume, fetch or delete bulk jobs by id."""


@bulk.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Progress (and summary, when complete) as JSON.")
def status_command(job_id: str, as_json: bool) -> None:
    job = _job(job_id)
    progress, summary = job.progress(), job.summary()
    if as_json:
        click.echo(json.dumps({"progress": progress.to_json(), "summary": summary}, indent=2))
        return
    p = progress
    click.echo(
        f"job {job_id}: {p.status}, chunks {p.chunks_done} of {p.chunks_total if p.chunks_total is not None else '?'} recorded "
        f"({p.chunks_submitted} submitted, {p.chunks_failed} failed), leads {p.leads_done:,} done of {p.leads_submitted:,} submitted"
    )
    for chunk, problem in sorted(job.store.failures(job_id).items())[:10]:
        click.echo(f"  chunk {chunk} failed: {problem}")
    if summary:
        print_summary(summary)


@bulk.command("resume")
@click.argument("job_id")
def resume_command(job_id: str) -> None:
    """Re-dispatch every chunk without a recorded result; write the summary if all are recorded."""
    report = _job(job_id).resume()
    click.echo(
        f"job {job_id}: re-dispatched {len(report['redispatched'])} chunks, "
        f"{'complete' if report['complete'] else 'not complete yet'}"
    )
    if report["lost"]:
        click.echo(f"chunks {report['lost']} lost their input (expired); submit the input again with score-file --job {job_id}", err=True)
    if not report["input_complete"]:
        click.echo("its input was never fully submitted; go on with: leadscore score-file FILE --out OUT --job " + job_id, err=True)
    sys.exit(0 if not report["lost"] and report["input_complete"] else EXIT_JOB_STOPPED)


@bulk.command("fetch")
@click.argument("job_id")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help=".csv, .parquet or .jsonl")
def fetch_command(job_id: str, out: Path) -> None:
    """Stream a job's per-lead results to a file."""
    try:
        rows = _job(job_id).write(out)
    except LeadscoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{out}: {rows:,} rows")


@bulk.command("delete")
@click.argument("job_id")
def delete_command(job_id: str) -> None:
    """Delete a job's inputs, results and summary now rather than at expiry."""
    click.echo(f"job {job_id}: {_job(job_id).delete()} keys deleted")


def _job(job_id: str) -> BulkJob:
    try:
        job = BulkJob(job_id)
        job.store.meta(job_id)
    except LeadscoreError as exc:
        raise click.ClickException(str(exc)) from None
    return job
