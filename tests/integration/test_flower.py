"""A real Flower process against the test broker: workers and tasks read back through its HTTP API."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from leadscore import score_lead
from tests import factories
from tests.integration.redis_server import free_port
from tests.integration.workers import die_with_parent, stop_group, worker_env
from tests.waits import poll

pytestmark = pytest.mark.broker


def get(url: str, auth: str | None) -> tuple[int, object]:
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            is_json = response.headers.get_content_type() == "application/json"
            return response.status, json.loads(body) if is_json else body.decode()
    except urllib.error.HTTPError as exc:
        return exc.code, None


def test_flower_shows_workers_and_tasks_behind_basic_auth(worker: Path, tmp_path: Path) -> None:
    port, auth = free_port(), "ops:s3cret"
    env = worker_env()
    env["FLOWER_BASIC_AUTH"] = auth
    with open(tmp_path / "flower.log", "ab") as log:
        flower = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "leadscore", "flower", "--address=127.0.0.1", f"--port={port}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        flower_down = (urllib.error.URLError, ConnectionError)
        poll(lambda: get(f"{base}/healthcheck", None)[0] == 200, timeout=60, interval=0.25, ignoring=flower_down, what="Flower's /healthcheck")
        workers = poll(lambda: get(f"{base}/api/workers?refresh=1", auth)[1], timeout=60, interval=0.25, ignoring=flower_down, what="workers in Flower")
        lead = factories.lead(21)

        def a_scored_task_seen() -> dict[str, Any] | None:
            # Flower only knows tasks whose events arrived after its event receiver connected, which
            # happens some time after /healthcheck answers: keep scoring until one shows up.
            score_lead.delay(lead)
            tasks = get(f"{base}/api/tasks?taskname=leadscore.score_lead&state=SUCCESS", auth)[1]
            return next(iter(tasks.values()), None) if isinstance(tasks, dict) else None

        task = poll(a_scored_task_seen, timeout=60, interval=0.25, ignoring=flower_down, what="a scored task in Flower")
        unauthenticated = get(f"{base}/api/workers", None)[0]
    finally:
        stop_group(flower)
    assert any(name.startswith("test-") for name in workers)  # type: ignore[union-attr]
    assert task["name"] == "leadscore.score_lead"
    assert unauthenticated == 401
