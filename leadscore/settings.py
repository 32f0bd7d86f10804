"""The one settings object. Nothing else in leadscore reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml_core.parity import PARITY_TOLERANCE
from ml_core.store.state import embedded_url

_REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


class Settings(BaseSettings):
    """Every field can be set as ``LEADSCORE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", frozen=True)

    broker_url: str = "redis://127.0.0.1:6379/0"
    """Celery broker. Redis needs ``noeviction``; ``amqp://`` works too."""
    result_backend: str = "redis://127.0.0.1:6379/1"
    """Celery result backend."""
    cache_url: str = "redis://127.0.0.1:6379/2"
    """Prediction cache. Its own database, so an eviction policy never touches broker keys."""
    models_dir: Path = _REPO_MODELS
    """Specs (``<name>/spec.toml``) and registered versions (``<name>/<version>/``)."""

    lock_url: str = "redis://127.0.0.1:6379/3"
    """Coordination locks (the single-Beat lock). Must not evict: keep it on the broker's Redis."""

    scoring_queue: str = "scoring"
    batch_queue: str = "batch"
    training_queue: str = "training"

    result_expires_seconds: int = Field(3600, gt=0)
    """Finite, so result keys never pile up in Redis."""
    visibility_timeout_seconds: int = Field(600, gt=0)
    """Redis broker: an unacknowledged task returns to its queue after this long (a dead worker's
    tasks are redelivered). Longer than any task runs, or a slow task is delivered twice."""
    client_resend_seconds: float = Field(3.0, gt=0)
    """``ScoreClient.score`` re-sends a lead (same task id) when no result came for this long: a
    Redis broker can lose a message to a worker killed mid-delivery (``leadscore/client/score_client.py``)."""
    beat_lock_ttl_seconds: float = Field(30.0, gt=0)
    """A Beat that stops renewing its lock for this long is taken over by a standby Beat."""
    health_ping_seconds: float = Field(60.0, gt=0)
    """Beat's interval for the health ping through the scoring queue."""
    cache_ttl_seconds: int = Field(300, gt=0)
    batch_chunk_size: int = Field(5000, gt=0)
    """Leads per chunk task in bulk jobs. Measured (bench/throughput.py sweep): 1,000 reached ~60 %
    of the throughput plateau, 5,000 is where it flattens (10,000 gained nothing)."""
    bulk_window_chunks: int = Field(8, gt=0)
    """Chunks per chord in a bulk job; at most two windows' inputs wait in Redis at once."""
    bulk_job_ttl_seconds: int = Field(86_400, gt=0)
    """Lifetime of a bulk job's inputs, results and summary in Redis after its last write."""
    bulk_stall_seconds: float = Field(120.0, gt=0)
    """A bulk client that sees no chunk finish for this long re-dispatches the missing ones."""
    worker_heartbeat_seconds: float = Field(2.0, gt=0)
    """A worker renews its liveness key this often; three missed renewals and a bulk client
    re-dispatches the chunks that worker had received (``leadscore/worker/bulk_claims.py``)."""
    max_batch_size: int = Field(10_000, gt=0)
    """Largest list ``predict_batch`` accepts; larger inputs go through bulk scoring."""
    score_batch_max: int = Field(64, gt=0, le=64)
    """Most ``score_lead`` requests a scoring worker scores together (``leadscore/worker/micro_batch.py``);
    1 turns micro-batching off. A batch is what waited while the previous one ran, never more."""
    unknown_fields: Literal["reject", "ignore"] = "reject"
    """What validation does with a lead field the spec does not name."""
    default_confidence_threshold: float = Field(0.85, ge=0.5, le=1.0)
    """Used when a spec sets no ``confidence_threshold`` of its own."""
    breaker_failure_threshold: int = Field(5, gt=0)
    """Consecutive prediction failures that open a model's circuit breaker (a failed load opens it at once)."""
    breaker_reset_seconds: float = Field(30.0, gt=0)
    """How long an open breaker serves the rules before one trial call (or reload) of the model."""
    parity_tolerance: float = Field(PARITY_TOLERANCE, gt=0)
    """Largest |ONNX - sklearn| probability on held-out rows before registration is refused."""
    run_dir: Path = Path(".run")
    """Where ``leadscore stack`` keeps pid files, logs and Beat's schedule file."""
    flower_address: str = "127.0.0.1"
    """Flower listens here; the compose stack sets 0.0.0.0 behind its own auth."""
    flower_port: int = 5555
    metrics_address: str = "127.0.0.1"
    """Workers (``--metrics-port``) and the fleet's exporter serve ``/metrics`` on this address."""
    metrics_port: int = 9808
    """The fleet's exporter (``leadscore metrics``) serves here; the stack's workers on the next ports."""
    warm_models: tuple[str, ...] = (
        "lead_scorer",
        "churn_predictor",
        "property_matcher",
        "property_interest_predictor",
        "viewing_probability_predictor",
    )
    """Models each worker process loads right after the fork, so first requests are fast."""

    # Prediction cache, events and the deep tier (leadscore/stores/cache.py, leadscore/stores/events.py, leadscore/tasks/deep.py).
    events_url: str | None = None
    """Redis for the event streams; unset, the cache's. Point it at a non-evicting Redis to keep events."""
    cache_timeout_seconds: float = Field(0.1, gt=0)
    """Connect and read timeout of the cache and events Redis: the most an outage adds to one call."""
    cache_retry_after_seconds: float = Field(5.0, ge=0)
    """After a cache or events Redis error, skip that Redis this long; scoring goes on without it."""
    events_maxlen: int = Field(100_000, gt=0)
    """Approximate length cap of each event stream (``XADD MAXLEN ~``)."""
    recent_leads_max: int = Field(10_000, gt=0)
    """Most recently scored leads per model kept (id and feature values only) for cache prewarming."""
    recent_leads_window_seconds: int = Field(3600, gt=0)
    """A lead not scored or looked up for this long is no longer prewarmed."""
    write_behind_max_pending: int = Field(10_000, gt=0)
    """Cache writes, events and hand-offs waiting for the background writer; more are dropped, never waited for."""
    deep_queue: str = "deep"
    """Queue of the deep tier: escalated leads and explanations."""
    explain_top_k: int = Field(5, gt=0)
    """Feature contributions returned in an explanation (the rest are summed)."""
    followup_task: str = "leadscore.record_handoff"
    """Task an escalated lead is handed to after the deep tier (an LLM or human review plugs in here)."""
    followup_queue: str = "deep"
    """Queue the follow-up task is sent to."""

    # Model lifecycle: outcomes, retraining, rollout, hot reload, drift (README, "Model lifecycle").
    data_dir: Path = Path(".data")
    """Durable lifecycle data: the default state store (``leadscore.sqlite3``, WAL, fsync on every commit)."""
    database_url: str | None = None
    """The state store (``ml_core.store``: versions, artifacts, champion and challenger, history, outcomes),
    a SQLAlchemy URL. Unset: SQLite in ``data_dir`` (one host). A fleet: ``postgresql+psycopg://...``
    shared by every host (``pip install leadscore[fleet]``; ``leadscore db upgrade`` once per release)."""
    snapshots_url: str | None = None
    """Redis for scored-feature snapshots and drift samples; unset, ``lock_url``'s (non-evicting, append-only)."""
    snapshot_history: int = Field(8, gt=0)
    """Feature snapshots kept per lead and model, newest first: an outcome takes the last one scored before it."""
    snapshot_ttl_days: int = Field(180, gt=0)
    """A lead's snapshots expire this long after its last score: longer than any outcome takes to happen."""
    snapshot_ranked_pairs: int = Field(50, gt=0)
    """Matches snapshotted per ranking and model, best first: outcomes follow the listings a lead was shown."""
    drift_sample_size: int = Field(20_000, gt=0)
    """Most recently scored leads per model kept (features and probability) for the drift check."""
    reload_check_seconds: float = Field(2.0, gt=0)
    """A worker looks at the champion and challenger pointers (one state-store read) at most this often, so a
    promotion or rollback is served, on every host, by every task that starts this long after it."""
    retrain_min_outcomes: int = Field(2000, gt=0)
    """Below this many outcomes with features, retraining adds the base data set to them."""
    retrain_base_rows: int = Field(20_000, gt=0)
    """Rows of the base (synthetic) data set added while outcomes are few."""
    retrain_base_data: Path | None = None
    """A CSV, Parquet or JSON-lines (conversations) base data set to use instead of synthetic rows (e.g. a CRM export)."""
    retrain_folds: int = Field(5, ge=2)
    retrain_champion_tolerance: float = 0.005
    """A retrained model may score at most this much below the champion on the same held-out rows
    (spec metric). Negative: it must beat the champion by that much."""
    retrain_lock_ttl_seconds: float = Field(60.0, gt=0)
    """The retrain lock expires this long after its holder stops renewing it (a killed worker)."""
    retrain_schedule: str = "0 23 * * sun"
    """When Beat retrains every model: a crontab in UTC (Sunday 23:00), or a number of seconds."""
    drift_schedule: str = "30 1 * * *"
    """When Beat runs the drift check: a crontab in UTC (daily 01:30), or a number of seconds."""
    challenger_mode: Literal["none", "shadow"] = "shadow"
    """What a newly registered challenger does until someone decides: shadow (scored, never returned) or nothing."""
    optimize_max_auc_drop: float = Field(0.005, ge=0)
    """An INT8 or compact artifact serves only if its held-out AUC is at most this much below the full model's ..."""
    optimize_max_abs_diff: float = Field(0.1, ge=0)
    """... no probability moves by more than this ..."""
    optimize_max_flip_rate: float = Field(0.02, ge=0)
    """... and at most this fraction of held-out leads change label band."""
    drift_psi_threshold: float = Field(0.2, gt=0)
    """Population stability index above which a feature, or the score distribution, has drifted."""
    drift_missing_margin: float = Field(0.1, gt=0, le=1)
    """Rise in a feature's share of blank leads (0.1: ten points over training's) that counts as drift."""
    drift_rate_margin: float = Field(0.05, gt=0, lt=1)
    """The realized escalation rate or a band's share of recent traffic further than this (absolute,
    0.05 = 5 points) from the card's out-of-fold value is drift. At 500 leads a 25 % share's sampling
    error is about 2 points, so 5 points is a real move, not noise."""
    drift_min_samples: int = Field(500, gt=0)
    """Fewer recent scored leads than this: the drift check reports too little traffic and decides nothing."""
    drift_retrain: bool = False
    """Whether a drift alert also sends ``retrain`` for that model."""

    @property
    def state_url(self) -> str:
        """The state store's URL: ``database_url``, else the SQLite file in ``data_dir``."""
        return self.database_url or embedded_url(self.data_dir)

    @field_validator("retrain_schedule", "drift_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        try:
            if float(value) > 0:
                return value
        except ValueError:
            if len(value.split()) == 5:
                return value
        raise ValueError("expected a number of seconds > 0 or a five-field crontab such as '0 23 * * sun'")


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once. Tests build their own ``Settings(...)``."""
    return Settings()
