"""The schedule, the compose file and the local stack agree with the app (no services needed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from leadscore import app
from leadscore.cli.stack import commands
from leadscore.schedule import schedule
from leadscore.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_every_scheduled_task_resolves_in_the_app() -> None:
    app.loader.import_default_modules()  # what a worker and Beat do at start: import every task module
    entries = schedule(Settings())
    assert entries
    for name, entry in entries.items():
        assert entry["task"] in app.tasks, f"beat entry {name!r} names unknown task {entry['task']!r}"


def test_every_routed_task_exists() -> None:
    app.loader.import_default_modules()
    routed = set(app.conf.task_routes)
    assert routed <= set(app.tasks), f"routes name unknown tasks {sorted(routed - set(app.tasks))}"
    ours = {name for name in app.tasks if name.startswith("leadscore.")}
    assert ours <= routed, f"tasks without a route {sorted(ours - routed)}"


def test_app_accepts_json_only() -> None:
    assert app.conf.accept_content == ["json"]
    assert app.conf.result_accept_content == ["json"]
    assert app.conf.task_serializer == app.conf.result_serializer == "json"
    assert app.conf.result_expires and app.conf.result_expires > 0
    assert app.conf.timezone == "UTC"


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_the_stack_commands_and_every_service_has_a_health_check() -> None:
    services = compose()["services"]
    stack = commands(Settings())
    execs = {s["command"][-1] for s in services.values() if s.get("command", [])[:3] == ["leadscore", "stack", "exec"]}
    assert execs == set(stack), "compose must run exactly the local stack's processes"
    for name, service in services.items():
        if name not in ("train", "db-upgrade"):  # one-shot jobs: they complete instead
            assert "healthcheck" in service, f"{name} has no health check"
    broker = " ".join(services["redis-broker"]["command"])
    assert "--appendonly yes" in broker and "--maxmemory-policy noeviction" in broker
    env = services["worker-scoring"]["environment"]
    assert env["LEADSCORE_BROKER_URL"] != env["LEADSCORE_CACHE_URL"]


@pytest.mark.skipif(shutil.which("docker-compose") is None, reason="Debian's docker-compose is not installed")
def test_compose_file_validates_and_flower_demands_credentials() -> None:
    with_auth = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=ROOT, env={"FLOWER_BASIC_AUTH": "ops:secret", "POSTGRES_PASSWORD": "pw", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert with_auth.returncode == 0, with_auth.stderr
    without = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=ROOT, env={"POSTGRES_PASSWORD": "pw", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert without.returncode != 0 and "FLOWER_BASIC_AUTH" in without.stderr
    no_store_password = subprocess.run(
        ["docker-compose", "config", "-q"], cwd=ROOT, env={"FLOWER_BASIC_AUTH": "ops:secret", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )
    assert no_store_password.returncode != 0 and "POSTGRES_PASSWORD" in no_store_password.stderr


def test_compose_hosts_share_no_directory_and_each_worker_serves_its_own_metrics() -> None:
    services = compose()["services"]
    workers = {name: s for name, s in services.items() if name.startswith("worker-")}
    # volumes only for the data services and Beat's schedule: no models, artifacts or metrics on a volume
    assert {name for name, s in services.items() if s.get("volumes")} == {"redis-broker", "postgres", "beat"}
    assert all(s["environment"]["LEADSCORE_DATABASE_URL"].startswith("postgresql+psycopg://") for s in workers.values())
    stack = commands(Settings())
    ports = [argv[argv.index("--metrics-port") + 1] for argv in stack.values() if "--metrics-port" in argv]
    assert len(ports) == len(workers) == len(set(ports)), "every worker its own metrics port"
    for name, service in workers.items():
        assert service["expose"] == [stack[name][stack[name].index("--metrics-port") + 1]]
        assert service["environment"]["LEADSCORE_METRICS_ADDRESS"] == "0.0.0.0"


@pytest.mark.parametrize("ttl", [300, 90, 10])
def test_prewarm_runs_more_often_than_cache_entries_expire(ttl: int) -> None:
    (entry,) = [e for e in schedule(Settings(cache_ttl_seconds=ttl)).values() if e["task"] == "leadscore.prewarm_cache"]
    assert entry["schedule"] <= min(60.0, ttl / 2)
    assert entry["options"]["expires"] <= entry["schedule"]


def test_every_queue_has_a_worker_and_its_tasks_are_routed_there() -> None:
    settings = Settings()
    queues = {q.name for q in app.conf.task_queues}
    assert queues == {settings.scoring_queue, settings.batch_queue, settings.training_queue, settings.deep_queue}
    consumed = {argv[argv.index("-Q") + 1] for argv in commands(settings).values() if "-Q" in argv}
    assert consumed == queues
    for task in ("leadscore.deep_score", "leadscore.explain_lead", "leadscore.record_handoff"):
        assert app.conf.task_routes[task]["queue"] == settings.deep_queue
    assert app.conf.task_routes["leadscore.prewarm_cache"]["queue"] == settings.batch_queue
