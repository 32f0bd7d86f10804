"""JSON only over the broker; password-protected Redis works."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import uuid
from pathlib import Path

import kombu
import pytest
import redis

from leadscore import ping
from leadscore.settings import get_settings
from tests import factories
from tests.integration.redis_server import RedisServer, free_port, redis_server
from tests.integration.workers import closing_client_app, running_worker, worker_env

pytestmark = pytest.mark.broker


class _TouchOnUnpickle:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def test_pickled_task_message_is_refused_and_never_unpickled(worker: Path, tmp_path: Path) -> None:
    # Given a task message whose pickle body would create a file when unpickled
    marker = tmp_path / "unpickled"
    body = pickle.dumps(((_TouchOnUnpickle(marker),), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None}))
    task_id = str(uuid.uuid4())
    headers = {"lang": "py", "task": "leadscore.ping", "id": task_id, "root_id": task_id, "parent_id": None, "argsrepr": "", "kwargsrepr": ""}
    # When it is published straight onto the scoring queue, claiming to be pickle
    with kombu.Connection(get_settings().broker_url) as conn:
        conn.Producer().publish(
            body, exchange="scoring", routing_key="scoring", headers=headers,
            content_type="application/x-python-serialize", content_encoding="binary",
        )
    # Then the worker refuses it, stays healthy, and never ran the payload
    assert ping.delay().get(timeout=10)["pong"] is True
    assert not marker.exists()
    assert "is not accepted (JSON only)" in worker.read_text()


def test_password_protected_redis_broker_and_backend(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    password = uuid.uuid4().hex
    factory = lambda port: redis.Redis(port=port, password=password)  # noqa: E731
    with redis_server(tmp_path / "redis", "--requirepass", password, client_factory=factory) as server:
        base = f"redis://:{password}@127.0.0.1:{server.port}"
        env = worker_env(models_dir=str(models_dir), broker_url=f"{base}/0", result_backend=f"{base}/1")
        # the client app is closed before its private Redis stops
        with running_worker(env, tmp_path / "w.log", queues="scoring", concurrency=1), closing_client_app(env) as app:
            lead = factories.lead(3)
            result = app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)
            pong = app.send_task("leadscore.ping").get(timeout=10)
    assert result["lead_id"] == lead["id"] and result["served_by"] == "onnx"
    assert password not in (tmp_path / "w.log").read_text()
    # a scoring child that has only scored carries no training stack (scikit-learn, pandas, ...)
    assert pong["training_stack"] == []


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1, made with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory.mkdir()
    paths = {name: directory / name for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "ext.cnf")}
    paths["ext.cnf"].write_text("subjectAltName=IP:127.0.0.1,DNS:localhost")
    for argv in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", paths["ca.key"], "-out", paths["ca.crt"], "-days", "1", "-subj", "/CN=leadscore-test-ca"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", paths["server.key"], "-out", paths["server.csr"], "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", paths["server.csr"], "-CA", paths["ca.crt"], "-CAkey", paths["ca.key"], "-CAcreateserial",
         "-out", paths["server.crt"], "-days", "1", "-extfile", paths["ext.cnf"]],
    ):
        subprocess.run(["openssl", *map(str, argv)], check=True, capture_output=True, timeout=60)
    return paths


def test_tls_redis_with_a_verified_certificate(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    certs = make_certificates(tmp_path / "certs")
    password, port = uuid.uuid4().hex, free_port()
    tls_args = ("--port", "0", "--tls-port", str(port), "--tls-cert-file", str(certs["server.crt"]),
                "--tls-key-file", str(certs["server.key"]), "--tls-ca-cert-file", str(certs["ca.crt"]),
                "--tls-auth-clients", "no", "--requirepass", password)
    query = f"ssl_cert_reqs=required&ssl_ca_certs={certs['ca.crt']}"
    url = lambda db: f"rediss://:{password}@127.0.0.1:{port}/{db}?{query}"  # noqa: E731
    server = RedisServer(tmp_path / "redis", port, tls_args)
    server.start(redis.Redis.from_url(url(0)))
    try:
        env = worker_env(models_dir=str(models_dir), broker_url=url(0), result_backend=url(1), cache_url=url(2))
        with running_worker(env, tmp_path / "w.log", queues="scoring", concurrency=1), closing_client_app(env) as app:
            lead = factories.lead(5)
            result = app.send_task("leadscore.score_lead", args=[lead]).get(timeout=10)
    finally:
        server.stop()
    assert result["lead_id"] == lead["id"] and result["served_by"] == "onnx"
    assert password not in (tmp_path / "w.log").read_text()
