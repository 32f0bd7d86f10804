"""How should ``score_lead_profile`` run its five models? Sequential, threads, or a fan-out of tasks.

    .venv/bin/python bench/profile_bench.py [--repeats 30] [--sizes 20,200,2000]

Prints a Markdown section. In-process, the same work the task does (two lead models, then the
three pair models over N properties) one after the other, and with the three parts on a thread
pool (ONNX Runtime releases the GIL while it runs). Through the worker, one
``score_lead_profile`` task against three tasks sent at once by the client (``score_lead``,
``predict_churn``, ``recommend_properties``), run in parallel by the worker's children. A task
cannot fan out and wait itself: waiting on subtasks inside a task can deadlock the pool.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.model_stack import interleaved_timings_ms, machine, p, profile_lead, properties, scoring_worker, store_of, trained_models
from ml_core.lead_profile import split_lead
from ml_core.matching import PREFERENCES, rank_properties
from ml_core.pool import ModelPool
from ml_core.registry import Registry
from ml_core.scoring import score_one

LEAD_MODELS = ("lead_scorer", "churn_predictor")
PAIR_MODELS = ("property_matcher", "property_interest_predictor", "viewing_probability_predictor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--sizes", default="20,200,2000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lead = profile_lead()
    listings = {n: properties(n) for n in sizes}
    rows: list[tuple[int, str, Any]] = []
    with trained_models() as models_dir:
        pool = ModelPool(Registry(models_dir, store_of(models_dir)))
        lead_models = [pool.get(name) for name in LEAD_MODELS]
        pair_models = [pool.get(name) for name in PAIR_MODELS]
        _, views = split_lead(lead, [m.spec for m in lead_models], nested=(PREFERENCES,))

        def parts(n: int) -> list[Any]:
            return [
                *(lambda m=m: score_one(m.spec, m.scorer, views[m.spec.name]) for m in lead_models),
                lambda: rank_properties(pair_models, lead, listings[n], top_k=5),
            ]

        with ThreadPoolExecutor(max_workers=3) as threads:
            for n in sizes:
                local = interleaved_timings_ms(
                    {
                        "in-process, one after the other (what the task does)": lambda: [f() for f in parts(n)],
                        "in-process, three parts on a thread pool": lambda: [f.result() for f in [threads.submit(g) for g in parts(n)]],
                    },
                    args.repeats,
                )
                rows.extend((n, how, ms) for how, ms in local.items())
        from leadscore import predict_churn, recommend_properties, score_lead, score_lead_profile

        with tempfile.TemporaryDirectory() as tmp, scoring_worker(models_dir, Path(tmp) / "worker.log"):
            for n in sizes:

                def fan_out(n: int = n) -> list[Any]:
                    # Sent together, awaited one by one: GroupResult.get() polls every 0.5 s, which would
                    # measure Celery's join interval rather than the fan-out.
                    sent = [
                        score_lead.delay(views["lead_scorer"]),
                        predict_churn.delay(views["churn_predictor"]),
                        recommend_properties.delay(lead, listings[n], top_k=5, order_by="property_matcher"),
                    ]
                    return [r.get(timeout=60) for r in sent]

                remote = interleaved_timings_ms(
                    {
                        "one `score_lead_profile` task, round trip": lambda: score_lead_profile.delay(lead, listings[n], top_k=5).get(timeout=60),
                        "three tasks sent at once by the client, round trip": fan_out,
                    },
                    args.repeats,
                )
                rows.extend((n, how, ms) for how, ms in remote.items())
    print("## Lead profile: sequential, threads or fan-out (`bench/profile_bench.py`)\n")
    print(
        f"Two lead models and three pair models over N properties, {args.repeats} calls each after 2 warm-up calls,"
        f" the two ways taking turns. {machine()}.\n"
    )
    print("| properties | how | p50 ms | p95 ms |")
    print("| ---: | --- | ---: | ---: |")
    for n, how, ms in sorted(rows, key=lambda r: r[0]):
        print(f"| {n:,} | {how} | {p(ms, 50)} | {p(ms, 95)} |")


if __name__ == "__main__":
    main()
