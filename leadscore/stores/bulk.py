"""A bulk job's state in Redis: the single source of truth for its progress, results and summary.

It lives in the result backend's Redis (durable: append-only, ``noeviction`` in the compose
stack), under keys sharing one hash tag, ``leadscore:bulk:{<job id>}:<part>``:

    meta      hash    model, chunk_size, created_at, chunks_total/leads_total once input ended,
                      counters leads_submitted, leads_scored, leads_invalid
    sizes     hash    chunk index -> leads in it: every chunk ever submitted
    input:<i> string  the chunk's leads (``LeadChunk`` JSON), deleted once its result is recorded
    results   hash    chunk index -> the recorded chunk (``ml_core.bulk_chunk.pack`` JSON)
    failed    hash    chunk index -> why its last run failed (type and id-only message)
    claims    hash    chunk index -> the worker that last received its task (``leadscore/worker/bulk_claims.py``)
    summary   string  the job summary, written once every chunk is recorded

Recording is one Lua script: the result is written with HSET and the counters move only when
the field is new, so a chunk that runs twice (``acks_late`` redelivery, a resume racing a slow
worker) overwrites its own result and is never counted twice. Every key expires
``bulk_job_ttl_seconds`` after the job's last write.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, cast

import orjson
import redis
from celery import Celery

from ml_core.errors import BulkJobError

_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

_RECORD = """
local new = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if new == 1 then
  redis.call('HINCRBY', KEYS[2], 'leads_scored', ARGV[3])
  redis.call('HINCRBY', KEYS[2], 'leads_invalid', ARGV[4])
end
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('DEL', KEYS[3])
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], ARGV[5]) end
redis.call('EXPIRE', KEYS[4], ARGV[5])
return new
"""

# Claims of dead workers on chunks still unrecorded, released in one step: a second client
# checking at the same time gets nothing, so the chunk is re-dispatched once per death.
_RELEASE = """
local released = {}
local claims = redis.call('HGETALL', KEYS[1])
for i = 1, #claims, 2 do
  for j = 1, #ARGV do
    if claims[i + 1] == ARGV[j] and redis.call('HEXISTS', KEYS[2], claims[i]) == 0 then
      redis.call('HDEL', KEYS[1], claims[i])
      table.insert(released, claims[i])
    end
  end
end
return released
"""

_SUBMIT = """
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[2], 'leads_submitted', ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
"""


def worker_key(worker: str) -> str:
    return f"leadscore:worker:{{{worker}}}:alive"


@dataclass(frozen=True)
class Progress:
    job_id: str
    status: str
    """``submitting`` (input still streaming in), ``running``, ``complete`` or ``failed``."""
    chunks_total: int | None
    chunks_submitted: int
    chunks_done: int
    chunks_failed: int
    leads_total: int | None
    leads_submitted: int
    leads_scored: int
    leads_invalid: int

    @property
    def leads_done(self) -> int:
        return self.leads_scored + self.leads_invalid

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "leads_done": self.leads_done}


class BulkStore:
    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._record = client.register_script(_RECORD)
        self._submit = client.register_script(_SUBMIT)
        self._release = client.register_script(_RELEASE)

    @classmethod
    def for_app(cls, app: Celery, ttl_seconds: int) -> BulkStore:
        """The store on the app's result backend (whose Redis connection pool Celery manages)."""
        client = getattr(app.backend, "client", None)
        if not isinstance(client, redis.Redis):
            raise BulkJobError("-", "bulk jobs need a Redis result backend (LEADSCORE_RESULT_BACKEND=redis://...)")
        return cls(client, ttl_seconds)

    def key(self, job_id: str, part: str) -> str:
        if not _JOB_ID.match(job_id):
            raise BulkJobError(job_id[:64], "job ids are 1 to 64 letters, digits, '-' or '_'")
        return f"leadscore:bulk:{{{job_id}}}:{part}"

    def create(self, job_id: str, meta: dict[str, Any]) -> None:
        key = self.key(job_id, "meta")
        with self.client.pipeline() as pipe:
            pipe.hsetnx(key, "created_at", f"{time.time():.3f}")
            pipe.hset(key, mapping={k: json.dumps(v) for k, v in meta.items()})
            pipe.expire(key, self.ttl)
            pipe.execute()

    def meta(self, job_id: str) -> dict[str, Any]:
        raw = cast(dict[bytes, bytes], self.client.hgetall(self.key(job_id, "meta")))  # replies are bytes: no decode_responses
        if not raw:
            raise BulkJobError(job_id, "no such job (never created, or expired)")
        return {k.decode(): json.loads(v) for k, v in raw.items()}

    def submit(self, job_id: str, chunk: int, n_leads: int, payload: bytes) -> None:
        """Keep a chunk's input until its result is recorded (or the job expires)."""
        self._submit(
            keys=[self.key(job_id, "sizes"), self.key(job_id, "meta"), self.key(job_id, f"input:{chunk}")],
            args=[chunk, n_leads, payload, self.ttl],
        )

    def end_input(self, job_id: str, chunks_total: int, leads_total: int) -> None:
        key = self.key(job_id, "meta")
        self.client.hset(key, mapping={"chunks_total": chunks_total, "leads_total": leads_total})
        self.client.expire(key, self.ttl)

    def input(self, job_id: str, chunk: int) -> bytes | None:
        return cast(bytes | None, self.client.get(self.key(job_id, f"input:{chunk}")))

    def has_input(self, job_id: str, chunk: int) -> bool:
        return bool(self.client.exists(self.key(job_id, f"input:{chunk}")))

    def record(self, job_id: str, chunk: int, packed: dict[str, Any]) -> bool:
        """Store a chunk's result; True when it is new, False when it replaced an earlier run's."""
        scored = len(packed["scored"]["pos"])
        new = self._record(
            keys=[self.key(job_id, "results"), self.key(job_id, "meta"), self.key(job_id, f"input:{chunk}"), self.key(job_id, "failed")],
            args=[chunk, orjson.dumps(packed), scored, len(packed["invalid"]), self.ttl],
        )
        return bool(new)

    def record_failure(self, job_id: str, chunk: int, problem: str) -> None:
        key = self.key(job_id, "failed")
        self.client.hset(key, str(chunk), problem)
        self.client.expire(key, self.ttl)

    def clear_failure(self, job_id: str, chunk: int) -> None:
        self.client.hdel(self.key(job_id, "failed"), str(chunk))

    def failures(self, job_id: str) -> dict[int, str]:
        failed = cast(dict[bytes, bytes], self.client.hgetall(self.key(job_id, "failed")))
        return {int(k): v.decode() for k, v in failed.items()}

    def claim(self, job_id: str, chunk: int, worker: str) -> None:
        key = self.key(job_id, "claims")
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hset(key, str(chunk), worker)
            pipe.expire(key, self.ttl)
            pipe.execute()

    def claimed(self, job_id: str) -> set[int]:
        return {int(k) for k in self.client.hkeys(self.key(job_id, "claims"))}

    def claimants(self, job_id: str) -> set[str]:
        return {v.decode() for v in cast(list[bytes], self.client.hvals(self.key(job_id, "claims")))}

    def release(self, job_id: str, dead: set[str]) -> list[int]:
        """Unrecorded chunks claimed by ``dead`` workers, their claims removed (at most once each)."""
        if not dead:
            return []
        released = self._release(keys=[self.key(job_id, "claims"), self.key(job_id, "results")], args=sorted(dead))
        return sorted(int(c) for c in released)

    def beat(self, worker: str, ttl: float) -> None:
        """``worker`` is alive for ``ttl`` more seconds."""
        self.client.set(worker_key(worker), "1", px=max(1, int(ttl * 1000)))

    def alive(self, workers: set[str]) -> set[str]:
        ordered = sorted(workers)
        with self.client.pipeline(transaction=False) as pipe:
            for worker in ordered:
                pipe.exists(worker_key(worker))
            return {w for w, found in zip(ordered, pipe.execute()) if found}

    def submitted(self, job_id: str) -> set[int]:
        return {int(k) for k in self.client.hkeys(self.key(job_id, "sizes"))}

    def recorded(self, job_id: str) -> set[int]:
        return {int(k) for k in self.client.hkeys(self.key(job_id, "results"))}

    def is_recorded(self, job_id: str, chunk: int) -> bool:
        return bool(self.client.hexists(self.key(job_id, "results"), str(chunk)))

    def result(self, job_id: str, chunk: int) -> dict[str, Any] | None:
        raw = self.client.hget(self.key(job_id, "results"), str(chunk))
        return None if raw is None else orjson.loads(raw)

    def results(self, job_id: str, chunks: int) -> Iterator[dict[str, Any]]:
        """Recorded chunks in index order, one in memory at a time; raises on a missing one."""
        for chunk in range(chunks):
            packed = self.result(job_id, chunk)
            if packed is None:
                raise BulkJobError(job_id, f"chunk {chunk} has no recorded result; run `leadscore bulk resume {job_id}`")
            yield packed

    def put_summary(self, job_id: str, summary: dict[str, Any]) -> None:
        self.client.set(self.key(job_id, "summary"), json.dumps(summary), ex=self.ttl)

    def summary(self, job_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.key(job_id, "summary"))
        return None if raw is None else json.loads(raw)

    def progress(self, job_id: str) -> Progress:
        with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key(job_id, "meta"))
            pipe.hlen(self.key(job_id, "sizes"))
            pipe.hlen(self.key(job_id, "results"))
            pipe.hlen(self.key(job_id, "failed"))
            pipe.exists(self.key(job_id, "summary"))
            raw, submitted, done, failed, has_summary = pipe.execute()
        if not raw:
            raise BulkJobError(job_id, "no such job (never created, or expired)")
        meta = {k.decode(): v for k, v in raw.items()}

        def number(name: str) -> int | None:
            return int(meta[name]) if name in meta else None

        status = "complete" if has_summary else "failed" if failed else "running" if "chunks_total" in meta else "submitting"
        return Progress(
            job_id=job_id,
            status=status,
            chunks_total=number("chunks_total"),
            chunks_submitted=submitted,
            chunks_done=done,
            chunks_failed=failed,
            leads_total=number("leads_total"),
            leads_submitted=number("leads_submitted") or 0,
            leads_scored=number("leads_scored") or 0,
            leads_invalid=number("leads_invalid") or 0,
        )

    def delete(self, job_id: str) -> int:
        keys = [self.key(job_id, part) for part in ("meta", "sizes", "results", "failed", "summary", "claims")]
        keys += [self.key(job_id, f"input:{i}") for i in self.submitted(job_id)]
        return int(self.client.delete(*keys))
