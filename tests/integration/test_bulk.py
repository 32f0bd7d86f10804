"""Bulk jobs through a real broker, result backend and prefork workers, including a SIGKILLed one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import redis
from click.testing import CliRunner

from leadscore import BulkJob, bulk_chunk, bulk_resume, bulk_score, predict_batch
from leadscore.cli.main import main
from leadscore.stores.bulk import Progress
from leadscore.stores.bulk_jobs import recover
from ml_core.errors import BulkJobError
from ml_core.lead_files import chunk_leads
from tests import factories
from tests.conftest import TEST_REDIS
from tests.integration.workers import closing_client_app, running_worker, worker_env
from tests.waits import poll

pytestmark = pytest.mark.broker


def assert_every_lead_once(job: BulkJob, leads: list[Any], invalid_rows: set[int]) -> list[dict[str, Any]]:
    rows = list(job.results())
    assert [r["row"] for r in rows] == list(range(len(leads)))
    assert {r["row"] for r in rows if r["error"] is not None} == invalid_rows
    for r in rows:
        if r["error"] is None:
            assert r["lead_id"] == leads[r["row"]]["id"] and r["label"] in ("hot", "warm", "cold")
    return rows


def assert_summary_matches(summary: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    scores = np.asarray([r["score"] for r in rows if r["error"] is None])
    assert summary["leads"] == len(rows)
    assert summary["scored"] == len(scores) and summary["invalid"] == len(rows) - len(scores)
    assert summary["labels"] == {k: Counter(r["label"] for r in rows if r["error"] is None)[k] for k in ("hot", "warm", "cold")}
    assert sum(b["count"] for b in summary["score_histogram"]) == len(scores)
    for q in (1, 50, 99):
        assert summary["score_percentiles"][f"p{q}"] == pytest.approx(np.percentile(scores, q, method="inverted_cdf"))
    assert {e["row"] for e in summary["invalid_leads"]} == {r["row"] for r in rows if r["error"] is not None}


def test_bulk_score_scores_every_lead_exactly_once_with_progress_and_a_matching_summary(worker: Path) -> None:
    # Given 100,000 leads, three of them invalid
    leads: list[Any] = factories.leads(100_000, 21)
    leads[10] = {**leads[10], "timeline_urgency": 7}
    leads[55_555] = {**leads[55_555], "questions_asked": "many"}
    leads[99_999] = "not a lead"
    seen: list[Progress] = []

    def watch(progress: Progress) -> None:  # another handle on the job, by id, as a dashboard would
        if len(seen) < 2000:
            seen.append(BulkJob(progress.job_id).progress())

    # When they go through bulk scoring in windows of chords
    job = bulk_score(leads, chunk_size=1000, window=4, on_progress=watch)
    summary = job.wait(timeout=120, on_progress=watch)

    # Then progress was visible mid-run, every lead is in the results once, and the summary agrees
    assert any(p.status in ("submitting", "running") and 0 < p.chunks_done < 100 for p in seen)
    assert all(p.chunks_submitted - p.chunks_done <= 8 for p in seen)  # the in-flight window held
    rows = assert_every_lead_once(job, leads, invalid_rows={10, 55_555, 99_999})
    assert_summary_matches(summary, rows)
    assert summary["chunks"] == 100 and summary["served_by"] == {"onnx": 99_997}
    assert job.progress().status == "complete" and job.progress().leads_scored == 99_997
    # and a chunk's scores are predict_batch's scores for the same leads
    batch = predict_batch.delay(leads[:50]).get(timeout=20)
    assert [r["probability"] for r in rows[:50] if r["error"] is None] == [b["probability"] for b in batch if "error" not in b]


def test_resume_finalizes_a_job_whose_callback_never_fired_and_reruns_count_once(worker: Path) -> None:
    # Given a job whose chunks ran as plain tasks, outside any chord: no callback will come
    leads = factories.leads(1500, 4)
    job = BulkJob("no-callback-job")
    job.delete()
    job.store.create(job.id, {"model": "lead_scorer", "chunk_size": 500, "origin": {}})
    for i, chunk in enumerate(chunk_leads(leads, 500)):
        job.store.submit(job.id, i, len(chunk.leads), chunk.to_json())
    job.store.end_input(job.id, 3, 1500)
    for i in range(3):
        assert bulk_chunk.delay(job.id, i, "lead_scorer").get(timeout=20)["recorded"] is True
    assert job.progress().chunks_done == 3 and job.summary() is None

    # When resume runs (as a task), twice
    first = bulk_resume.delay(job.id).get(timeout=20)
    second = bulk_resume.delay(job.id).get(timeout=20)

    # Then the first writes the summary from the recorded chunks and nothing is sent again
    assert first["complete"] and first["redispatched"] == [] and second == first
    summary = job.summary()
    assert summary is not None
    assert_summary_matches(summary, assert_every_lead_once(job, leads, invalid_rows=set()))
    # and a chunk that runs again (as under acks_late redelivery) overwrites itself, counted once
    assert bulk_chunk.delay(job.id, 1, "lead_scorer").get(timeout=20)["recorded"] is False
    packed = job.store.result(job.id, 1)
    assert packed is not None and job.store.record(job.id, 1, packed) is False
    assert job.progress().leads_scored == 1500 and job.progress().chunks_done == 3


def _submitted_without_messages(job_id: str, leads: list[Any], stall_seconds: float, chunk_size: int = 400) -> BulkJob:
    """A job whose chunk inputs are all in Redis and no chunk task was ever sent."""
    job = BulkJob(job_id, stall_seconds=stall_seconds)
    job.delete()
    job.store.create(job.id, {"model": "lead_scorer", "chunk_size": chunk_size, "origin": {}})
    chunks = list(chunk_leads(leads, chunk_size))
    for i, chunk in enumerate(chunks):
        job.store.submit(job.id, i, len(chunk.leads), chunk.to_json())
    job.store.end_input(job.id, len(chunks), len(leads))
    return job


def test_a_waiting_client_re_dispatches_chunks_whose_messages_were_lost(worker: Path) -> None:
    # Given a job whose chunk inputs are in Redis but whose task messages never reached a worker
    leads = factories.leads(1200, 5)
    job = _submitted_without_messages("lost-messages-job", leads, stall_seconds=0.5)

    # When a client waits on it
    summary = job.wait(timeout=60)

    # Then, seeing no progress, it re-dispatched the chunks itself and the job completed
    assert summary["leads"] == summary["scored"] == 1200
    assert_summary_matches(summary, assert_every_lead_once(job, leads, invalid_rows=set()))


def test_a_dead_worker_s_chunks_and_those_it_took_without_claiming_go_out_again(worker: Path) -> None:
    # Given a job of four chunks: one recorded, one claimed by a worker that stopped beating, and two
    # that no worker claimed (a dead worker can take a message from the broker and die before
    # claiming it, and the broker gives that message back only after its visibility timeout)
    leads = factories.leads(1600, 6)
    job = _submitted_without_messages("unclaimed-chunks-job", leads, stall_seconds=600)
    job.store.claim(job.id, 1, "gone-host:1")
    bulk_chunk.delay(job.id, 0, "lead_scorer").get(timeout=30)

    # When the client checks the claimants
    recovered = recover(job.app, job.store, job.id, window=4)

    # Then every unrecorded chunk went out again, and the job completes without the stall timer
    assert recovered == [1, 2, 3]
    summary = job.wait(timeout=60)
    assert summary["leads"] == summary["scored"] == 1600
    assert_summary_matches(summary, assert_every_lead_once(job, leads, invalid_rows=set()))
    # and with no dead claimant, nothing is sent twice
    assert recover(job.app, job.store, job.id, window=4) == []


def _kill_worker_tree(pid: int) -> None:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for target in [pid, *map(int, children)]:
        os.kill(target, signal.SIGKILL)


def test_a_sigkilled_worker_loses_no_lead_and_resume_is_idempotent(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    # Given a score-file client running a job on a worker of its own (own broker databases)
    env = worker_env(models_dir=str(models_dir), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14", bulk_window_chunks="4")
    _flush(13, 14)
    frame = factories.lead_frame(20_000, 8)
    frame["financing_mentioned"] = frame["financing_mentioned"].astype(object)
    frame.loc[123, "financing_mentioned"] = "perhaps"
    frame.to_csv(tmp_path / "leads.csv", index=False)
    leads = frame.to_dict("records")
    argv = [str(Path(sys.executable).parent / "leadscore"), "score-file", str(tmp_path / "leads.csv"), "--out", str(tmp_path / "scores.csv")]
    with closing_client_app(env) as app:
        job = BulkJob("killed-worker-job", app=app)
        with running_worker(env, tmp_path / "a.log", queues="scoring,batch", concurrency=1) as first:
            client = subprocess.Popen([*argv, "--job", job.id, "--chunk-size", "500"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # When the worker and its child are SIGKILLed while chunks are in flight
            poll(lambda: _chunks_done(job) >= 2, timeout=60, interval=0.01, what="the first two chunks done")
            _kill_worker_tree(first.pid)
            first.wait(timeout=10)
        assert job.progress().status != "complete"

        # and a new worker comes up, and resume (the task) re-dispatches what the dead one held
        with running_worker(env, tmp_path / "b.log", queues="scoring,batch"):
            report = app.send_task("leadscore.bulk_resume", args=[job.id]).get(timeout=30)
            out, err = client.communicate(timeout=120)
            again = job.resume()

        # Then the client finishes, every lead is scored exactly once, and the summary agrees
        assert report["redispatched"] and not report["lost"]
        assert client.returncode == 1, err
        assert "row 123: lead 'lead-0000123' is invalid: financing_mentioned: expected a boolean, got string" in err
        rows = assert_every_lead_once(job, leads, invalid_rows={123})
        summary = job.summary()
        assert summary is not None
        assert_summary_matches(summary, rows)
        assert job.progress().leads_scored == 19_999
        scores = pd.read_csv(tmp_path / "scores.csv")
        assert list(scores["row"]) == list(range(20_000)) and list(scores["lead_id"].fillna("")) == list(frame["id"])
        # and resume again changes nothing
        assert again["redispatched"] == [] and again["complete"] and job.summary() == summary
    _flush(13, 14)


def test_chunks_held_by_a_sigkilled_worker_are_sent_again_long_before_the_stall_bound(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    # Given a waiting client whose stall timer (600 s) and broker visibility timeout (600 s) cannot
    # be what recovers, and a worker that prefetches chunks (concurrency 1, prefetch 4)
    env = worker_env(models_dir=str(models_dir), broker_url=f"{TEST_REDIS}/13", result_backend=f"{TEST_REDIS}/14",
                     bulk_window_chunks="4", bulk_stall_seconds="600", worker_heartbeat_seconds="1")
    _flush(13, 14)
    leads = factories.leads(20_000, 9)
    with closing_client_app(env) as app, ThreadPoolExecutor(1) as client:
        job = BulkJob("prefetched-job", app=app)
        with running_worker(env, tmp_path / "a.log", queues="scoring,batch", concurrency=1) as first:
            submitting = client.submit(bulk_score, leads, job_id=job.id, chunk_size=500, app=app)
            # When the worker and its child are SIGKILLed while chunks are in flight, and another comes up
            poll(lambda: _chunks_done(job) >= 2, timeout=60, interval=0.01, what="the first two chunks done")
            _kill_worker_tree(first.pid)
            first.wait(timeout=10)
        killed_at, done_then = time.monotonic(), job.progress().chunks_done
        assert done_then < 40, "the kill came too late to test anything"
        with running_worker(env, tmp_path / "b.log", queues="scoring,batch", concurrency=1):
            summary = submitting.result(timeout=120).wait(timeout=120)
            recovered_in = time.monotonic() - killed_at

    # Then the job completed without any resume, within the wait, every lead exactly once
    print(f"recovery after SIGKILL: job complete {recovered_in:.1f}s after the kill ({40 - done_then} of 40 chunks left then)")
    assert summary["leads"] == summary["scored"] == 20_000
    assert_summary_matches(summary, assert_every_lead_once(job, leads, invalid_rows=set()))
    assert job.progress().leads_scored == 20_000 and job.progress().chunks_done == 40
    _flush(13, 14)


def _flush(*dbs: int) -> None:
    for db in dbs:
        with redis.Redis.from_url(f"{TEST_REDIS}/{db}") as client:
            client.flushdb()


def _chunks_done(job: BulkJob) -> int:
    try:
        return job.progress().chunks_done
    except BulkJobError:  # the client thread has not created the job yet
        return -1


def _bad_csv(path: Path, n: int) -> None:
    factories.lead_frame(n, 3).to_csv(path, index=False)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(b"lead-", b"le\xffad-")  # row 2: an id that is not UTF-8
    lines[6] = lines[6] + b",extra"  # row 5: one field too many
    cells = lines[9].split(b",")
    cells[2] = b"lots"  # row 8: a word for a number
    lines[9] = b",".join(cells)
    path.write_bytes(b"\n".join(lines))


def test_score_file_scores_good_rows_reports_bad_ones_and_writes_csv_and_parquet(worker: Path, tmp_path: Path) -> None:
    # Given a CSV with a non-UTF-8 row, a row with an extra field and a bad cell
    leads_csv, out_csv = tmp_path / "leads.csv", tmp_path / "scores.csv"
    _bad_csv(leads_csv, 2500)
    runner = CliRunner()

    # When score-file runs over it
    result = runner.invoke(main, ["score-file", str(leads_csv), "--out", str(out_csv), "--chunk-size", "1000"])

    # Then it exits 1, names the three rows, and scores all the others into the output
    assert result.exit_code == 1, result.output
    assert "3 invalid rows" in result.stderr
    assert "row 2: lead None is invalid: id: not valid UTF-8" in result.stderr
    assert "row 5: lead 'lead-0000005' is invalid: row: has 12 fields, the header has 11" in result.stderr
    assert "row 8: lead 'lead-0000008' is invalid: message_length_avg: expected a number, got string" in result.stderr
    assert "label   count" in result.output
    scores = pd.read_csv(out_csv)
    assert list(scores["row"]) == list(range(2500))
    assert set(scores.index[scores["error"].notna()]) == {2, 5, 8}
    assert scores["score"].notna().sum() == 2497

    # and Parquet in, Parquet out: every row valid, exit 0, same scores as the CSV run
    factories.lead_frame(2500, 3).to_parquet(tmp_path / "leads.parquet")
    result = runner.invoke(main, ["score-file", str(tmp_path / "leads.parquet"), "--out", str(tmp_path / "scores.parquet")])
    assert result.exit_code == 0, result.output
    parquet = pd.read_parquet(tmp_path / "scores.parquet")
    assert len(parquet) == 2500 and parquet["error"].isna().all()
    good = scores["error"].isna()
    assert np.allclose(parquet["probability"][good], scores["probability"][good])

    # and the job's results can be fetched again by id, and its status read as JSON
    job_id = result.stderr.split()[1].rstrip(":")
    fetched = runner.invoke(main, ["bulk", "fetch", job_id, "--out", str(tmp_path / "again.csv")])
    assert fetched.exit_code == 0 and pd.read_csv(tmp_path / "again.csv")["probability"].equals(parquet["probability"])
    status = runner.invoke(main, ["bulk", "status", job_id, "--json"])
    assert '"status": "complete"' in status.output


def test_score_file_refuses_a_file_it_cannot_score_at_all(tmp_path: Path) -> None:
    frame = factories.lead_frame(10, 1).drop(columns="timeline_urgency")
    frame.to_csv(tmp_path / "leads.csv", index=False)
    result = CliRunner().invoke(main, ["score-file", str(tmp_path / "leads.csv"), "--out", str(tmp_path / "out.csv")])
    assert result.exit_code == 2
    assert "required columns missing for model 'lead_scorer': ['timeline_urgency']" in result.stderr
    assert not (tmp_path / "out.csv").exists()
