"""Benchmark ``match_properties`` over 1,000 and 10,000 properties, in-process and through a worker.

    .venv/bin/python bench/match_bench.py [--repeats 20] [--sizes 1000,10000]

Prints a Markdown section for BENCHMARKS.md. In-process is ``ml_core.matching.rank_properties``
with the registered ``property_matcher`` (validation, pair features, ONNX, ranking); through the
worker is ``match_properties.delay(lead, properties).get()`` against a prefork scoring worker,
which adds JSON encoding of the properties, the broker and the result backend. Uses the models
directory's champions, or trains every spec into a temporary directory first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.model_stack import machine, p, profile_lead, properties, scoring_worker, store_of, timings_ms, trained_models
from ml_core.matching import rank_properties
from ml_core.pool import ModelPool
from ml_core.registry import Registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lead = {"id": "bench-lead", "preferences": profile_lead()["preferences"]}
    rows: list[tuple[int, str, np.ndarray, list[float] | None]] = []
    with trained_models() as models_dir:
        matcher = ModelPool(Registry(models_dir, store_of(models_dir))).get("property_matcher")
        version = f"{matcher.scorer.version} ({matcher.scorer.served_by})"
        listings = {n: properties(n) for n in sizes}
        for n in sizes:
            local = timings_ms(lambda: rank_properties([matcher], lead, listings[n], top_k=10, max_properties=max(sizes)), args.repeats)
            rows.append((n, "in-process `rank_properties`", local, None))
        from leadscore import match_properties

        with tempfile.TemporaryDirectory() as tmp, scoring_worker(models_dir, Path(tmp) / "worker.log"):
            for n in sizes:
                inside: list[float] = []

                def round_trip() -> None:
                    inside.append(match_properties.delay(lead, listings[n], top_k=10).get(timeout=120)["latency_ms"])

                remote = timings_ms(round_trip, args.repeats)
                rows.append((n, "`match_properties.delay().get()`, prefork worker", remote, inside[-args.repeats :]))
    print("## Property matching (`bench/match_bench.py`)\n")
    print(f"`property_matcher` {version}, top 10 of N properties, {args.repeats} calls each after 2 warm-up calls. {machine()}.\n")
    print("| properties | path | p50 ms | p95 ms | in the worker p50 ms | request JSON |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n, path, ms, in_worker in rows:
        payload = len(json.dumps([lead, listings[n]])) / 1024
        worker_ms = p(np.asarray(in_worker), 50) if in_worker else "-"
        print(f"| {n:,} | {path} | {p(ms, 50)} | {p(ms, 95)} | {worker_ms} | {payload:,.0f} kB |")
    print(
        "\nIn the worker is the task's own `latency_ms` (validation, features, ONNX, ranking); the rest of a "
        "round trip is JSON encoding and decoding of the properties, the broker and the result backend."
    )


if __name__ == "__main__":
    main()
