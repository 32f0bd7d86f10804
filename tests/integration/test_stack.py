"""The local stack: the very commands docker-compose runs, started, probed through every queue, stopped."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from tests.conftest import TEST_REDIS
from tests.integration.metrics import scrape
from tests.integration.redis_server import free_port
from tests.integration.workers import worker_env
from tests.stores import registry_at

LEADSCORE = str(Path(sys.executable).parent / "leadscore")


def run(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LEADSCORE, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_stack_starts_serves_every_queue_and_stops(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    metrics_port = free_port()
    env = worker_env(
        models_dir=str(models_dir),
        run_dir=str(tmp_path / "run"),
        broker_url=f"{TEST_REDIS}/13",
        result_backend=f"{TEST_REDIS}/14",
        flower_port="55755",
        metrics_port=str(metrics_port),
    )
    try:
        started = run(env, "stack", "start", "--wait", "60")
        assert started.returncode == 0, started.stdout + started.stderr
        for queue in ("scoring", "batch", "training", "deep"):
            pong = run(env, "ping", "--queue", queue, "--timeout", "20")
            assert pong.returncode == 0, pong.stderr
            assert pong.stdout.startswith(f"{queue}: pong from")
        scored = run(env, "score", "--sample")
        assert scored.returncode == 0, scored.stderr
        assert json.loads(scored.stdout)["served_by"] == "onnx"
        with urllib.request.urlopen("http://127.0.0.1:55755/healthcheck", timeout=10) as response:
            assert response.status == 200
        # status proves every queue with a real task, and reports models, breakers and the recent
        # traffic (recorded by the worker's background writer: polled, bounded)
        for _ in range(10):
            report = run(env, "status", "--json", "--timeout", "20")
            assert report.returncode == 0, report.stdout + report.stderr
            health = json.loads(report.stdout)
            if health["traffic"].get("lead_scorer"):
                break
        assert all(w["alive"] for w in health["workers"].values())
        ports = {queue: w["metrics_port"] for queue, w in health["workers"].items()}
        assert ports == {"scoring": metrics_port + 1, "batch": metrics_port + 2, "training": metrics_port + 3, "deep": metrics_port + 4}
        assert health["workers"]["scoring"]["models"]["lead_scorer"]["breaker"] == "closed"
        assert set(health["queues"]) == {"scoring", "batch", "training", "deep"}
        version = json.loads(scored.stdout)["model_version"]
        live = health["traffic"]["lead_scorer"][version]
        assert live["leads"] >= 1 and live["expected"]["escalated"] == registry_at(models_dir).card("lead_scorer", version)["decision"]["escalation"]["budget"]
        # each worker serves what its own children counted, and nothing another worker counted
        scoring, batch, fleet = (scrape(port) for port in (metrics_port + 1, metrics_port + 2, metrics_port))
        assert 'leadscore_predictions_total{model="lead_scorer",served_by="onnx"}' in scoring
        assert "leadscore_task_latency_seconds_bucket" in scoring and "leadscore_labels_total{" in scoring
        assert "leadscore_predictions_total{" not in batch and "leadscore_predictions_total{" not in fleet
        # the fleet's exporter: the recent traffic's realized escalation rate and band shares, and the card's values
        assert f'leadscore_recent_escalation_rate{{model="lead_scorer",version="{version}"}} {live["escalated"]}' in fleet
        assert f'leadscore_card_escalation_rate{{model="lead_scorer",version="{version}"}} {live["expected"]["escalated"]}' in fleet
        assert f'leadscore_recent_band_share{{band="hot",model="lead_scorer",version="{version}"}} {live["bands"]["hot"]}' in fleet
    finally:
        stopped = run(env, "stack", "stop")
    assert stopped.returncode == 0
    status = run(env, "stack", "status").stdout.splitlines()
    assert len(status) == 7 and all(line.endswith("stopped") for line in status), status
