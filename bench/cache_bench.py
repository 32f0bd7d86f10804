"""Prediction cache benchmark, run against a running stack; prints a Markdown section.

    .venv/bin/leadscore stack start            # with the LEADSCORE_* environment of that stack
    .venv/bin/python bench/cache_bench.py      # same environment; --quick for a short smoke run

Measured in one run, calls interleaved so drift hits both sides alike:

1. a cache hit through ``ScoreClient.lookup`` against a ``score_lead.delay(...).get()`` round
   trip, on the same leads (p50, p95, ratio), beside a bare redis-py GET on the cache Redis;
2. ``score_lead`` (cache write, recency and events always on, behind the result) against the
   trivial-task floor, ``leadscore.ping`` (a task that returns a small dict);
3. the hit rate of ``ScoreClient.score`` on a replay of a traffic mix (described in the output
   and in ``replay_mix``), in simulated time compressed ``--speedup`` times.

Times are wall-clock from this process; on a shared machine compare ratios, not absolute values.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from leadscore import ping, score_lead
from leadscore.client.score_client import ScoreClient
from leadscore.settings import get_settings
from ml_core.synthetic import generate

MODEL = "lead_scorer"


def leads(n: int, seed: int, prefix: str) -> list[dict[str, Any]]:
    frame = generate(MODEL, n, seed).drop(columns="converted")
    frame["id"] = [f"{prefix}-{i}" for i in range(n)]
    return frame.to_dict("records")


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = call()
    return (time.perf_counter() - started) * 1000.0, out


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def wait_until_cached(client: ScoreClient, batch: list[dict[str, Any]], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for lead in batch:
        while client.lookup(lead) is None:
            if time.monotonic() > deadline:
                raise SystemExit("leads scored by the stack never appeared in the cache: is LEADSCORE_CACHE_URL the stack's?")
            time.sleep(0.01)


def hit_vs_round_trip(client: ScoreClient, n: int) -> dict[str, list[float]]:
    batch = leads(n, seed=901, prefix="bench-hit")
    for lead in batch:
        client.score(lead)
    wait_until_cached(client, batch)
    cache = redis.Redis.from_url(get_settings().cache_url)
    cache.set("bench:get-probe", b"x" * 120, ex=60)
    out: dict[str, list[float]] = {"hit": [], "round_trip": [], "redis_get": []}
    for lead in batch:
        ms, hit = timed(lambda: client.lookup(lead))
        if hit is None:
            raise SystemExit("a warmed lead missed the cache during the measurement (TTL too short?)")
        out["hit"].append(ms)
        out["round_trip"].append(timed(lambda: score_lead.delay(lead).get(timeout=10))[0])
        out["redis_get"].append(timed(lambda: cache.get("bench:get-probe"))[0])
    return out


def score_vs_floor(n: int) -> dict[str, list[float]]:
    batch = leads(n, seed=902, prefix="bench-floor")
    out: dict[str, list[float]] = {"ping": [], "score_lead": []}
    for lead in batch:
        out["ping"].append(timed(lambda: ping.delay().get(timeout=10))[0])
        out["score_lead"].append(timed(lambda: score_lead.delay(lead).get(timeout=10))[0])
    return out


@dataclass(frozen=True)
class Request:
    at: float  # simulated seconds
    lead: dict[str, Any]
    kind: str  # "first", "reply" or "view"


def replay_mix(n_leads: int, window: float, views_per_reply: float, seed: int) -> list[Request]:
    """A CRM's scoring traffic over ``window`` simulated seconds.

    Lead activity is Zipf-like (weight 1/rank): a few leads are in live conversation, most are
    quiet. Each lead is scored once when it first shows up. Each reply it sends (a Poisson number,
    mean 3 times its relative weight, at uniform times) changes its conversation features
    (another question asked at rate 0.6, the mean message length moves towards the new message,
    the median response time towards the new reply delay) and triggers a re-score: a new feature
    vector, so a miss. After each reply come ``views_per_reply`` (Poisson mean) re-scores with
    unchanged features, 1-120 simulated seconds later: the agent opening the lead, the inbox
    list refreshing, a notification. Only views and repeat first-sightings can hit.
    """
    rng = np.random.default_rng(seed)
    population = leads(n_leads, seed=seed, prefix="bench-mix")
    weights = 1.0 / np.arange(1, n_leads + 1)
    weights *= n_leads / weights.sum()
    requests: list[Request] = []
    for lead, weight in zip(population, weights):
        current = dict(lead)
        first_seen = float(rng.uniform(0, window * 0.2))
        requests.append(Request(first_seen, dict(current), "first"))
        for at in np.sort(rng.uniform(first_seen, window, rng.poisson(3.0 * weight))):
            current["questions_asked"] = int(min(1000, current["questions_asked"] + rng.poisson(0.6)))
            current["message_length_avg"] = float(0.8 * current["message_length_avg"] + 0.2 * rng.lognormal(4.5, 0.5))
            current["response_time_hours"] = float(min(2160, 0.8 * current["response_time_hours"] + 0.2 * rng.lognormal(1.5, 0.8)))
            requests.append(Request(float(at), dict(current), "reply"))
            for delay in rng.uniform(1.0, 120.0, rng.poisson(views_per_reply)):
                requests.append(Request(float(at + delay), dict(current), "view"))
    return sorted(requests, key=lambda r: r.at)


def run_replay(client: ScoreClient, requests: list[Request], speedup: float) -> dict[str, Any]:
    started = time.monotonic()
    outcome: dict[str, list[bool]] = {"first": [], "reply": [], "view": []}
    latency: dict[bool, list[float]] = {True: [], False: []}
    for request in requests:
        wait = request.at / speedup - (time.monotonic() - started)
        if wait > 0:
            time.sleep(wait)
        ms, result = timed(lambda: client.score(request.lead))
        hit = bool(result.get("cached"))
        outcome[request.kind].append(hit)
        latency[hit].append(ms)
    hits = sum(sum(v) for v in outcome.values())
    return {
        "requests": len(requests),
        "hits": hits,
        "by_kind": {k: (len(v), sum(v)) for k, v in outcome.items()},
        "p50_hit_ms": pct(latency[True], 50) if latency[True] else float("nan"),
        "p50_miss_ms": pct(latency[False], 50) if latency[False] else float("nan"),
        "wall_s": time.monotonic() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few samples: proves the bench runs, measures nothing")
    parser.add_argument("--samples", type=int, default=1000, help="calls per side in sections 1 and 2")
    parser.add_argument("--leads", type=int, default=400, help="leads in the replay")
    parser.add_argument("--views-per-reply", type=float, default=2.0)
    parser.add_argument("--speedup", type=float, default=20.0, help="simulated seconds per wall second in the replay")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.leads, args.speedup = 60, 60, 150.0
    settings = get_settings()
    try:
        pong = ping.delay().get(timeout=10)
    except Exception as exc:  # any failure here means no stack to measure
        raise SystemExit(f"no worker answered a ping ({exc.__class__.__name__}); start the stack first") from None
    window = float(settings.cache_ttl_seconds)
    with ScoreClient() as client:
        first = hit_vs_round_trip(client, args.samples)
        second = score_vs_floor(args.samples)
        requests = replay_mix(args.leads, window, args.views_per_reply, seed=903)
        replay = run_replay(client, requests, args.speedup)
    version = pong["models"].get(MODEL, {}).get("version", "?")
    hit_p50, rt_p50, floor_p50, score_p50 = (statistics.median(first["hit"]), statistics.median(first["round_trip"]),
                                             statistics.median(second["ping"]), statistics.median(second["score_lead"]))
    print(f"## Prediction cache (bench/cache_bench.py{' --quick' if args.quick else ''})\n")
    print(f"Model {MODEL} {version}; {args.samples} calls per side, interleaved; Python {platform.python_version()}, "
          f"{platform.machine()}. Client, broker and workers share this machine.\n")
    print("| measurement | p50 ms | p95 ms | target |\n| --- | ---: | ---: | --- |")
    print(f"| cache hit, `ScoreClient.lookup` | {hit_p50:.3f} | {pct(first['hit'], 95):.3f} | p50 <= 0.5 ms |")
    print(f"| `score_lead` round trip, same leads | {rt_p50:.3f} | {pct(first['round_trip'], 95):.3f} | |")
    print(f"| redis-py GET on the cache Redis (reference) | {statistics.median(first['redis_get']):.3f} | {pct(first['redis_get'], 95):.3f} | |")
    print(f"| trivial task floor, `ping` round trip | {floor_p50:.3f} | {pct(second['ping'], 95):.3f} | |")
    print(f"| `score_lead`, cache writes and events on | {score_p50:.3f} | {pct(second['score_lead'], 95):.3f} | |")
    print(f"\n- round trip / hit: **{rt_p50 / hit_p50:.1f}x** (target >= 5x)")
    print(f"- `score_lead` / floor: **{score_p50 / floor_p50:.2f}x** (target <= 1.3x)")
    by_kind = replay["by_kind"]
    print(f"- replay hit rate: **{replay['hits'] / replay['requests']:.1%}** of {replay['requests']} requests (target >= 60%): "
          f"first sightings {by_kind['first'][1]}/{by_kind['first'][0]}, replies {by_kind['reply'][1]}/{by_kind['reply'][0]}, "
          f"views {by_kind['view'][1]}/{by_kind['view'][0]} hit; p50 {replay['p50_hit_ms']:.3f} ms on a hit, "
          f"{replay['p50_miss_ms']:.3f} ms on a miss; {replay['wall_s']:.0f} s wall")
    print(f"\nReplay mix: {args.leads} leads over one cache TTL ({window:.0f} simulated s, {args.speedup:g}x faster), "
          f"activity weight 1/rank; each lead scored when first seen; replies Poisson(3 x weight), each changing "
          f"the conversation features (a miss) and followed by Poisson({args.views_per_reply:g}) views with "
          "unchanged features 1-120 s later (agent opens the lead, inbox refresh, notification). "
          "The hit rate follows from the views per reply: it measures that the cache serves every repeat, "
          "not how often a real CRM repeats.")


if __name__ == "__main__":
    main()
