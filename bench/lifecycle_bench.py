"""Benchmark the artifacts retraining may serve instead: INT8 ``mlp``, compact ``gradient_boosting``.

    .venv/bin/python bench/lifecycle_bench.py [--rows 20000] [--seed 42] [--repeats 20000] [--batches 1000]

Prints a Markdown section for BENCHMARKS.md. Needs no Redis and no worker. Each family is fitted
alone on the ``lead_scorer`` spec with synthetic rows (``ml_core.training.fit`` restricted to it,
with a 20% held-out split, so the split, cross-validation and ONNX export are training's own); the optimized artifact is the
one ``ml_core.optimize`` builds (``quantize_int8``; ``fit_compact`` exported to ONNX). Both
artifacts of a pair run in ``OnnxScorer`` sessions, as served (one intra-op thread), calls taking
turns; accuracy is ``ml_core.optimize.compare`` on the held-out rows, and the verdict is that of
``ml_core.optimize.optimize`` with the default ``Tolerance``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from onnx import load_from_string, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.model_stack import interleaved_timings_ms, machine
from leadscore.settings import get_settings
from ml_core import onnx_model, synthetic
from ml_core.dataset import training_set
from ml_core.onnx_model import OnnxScorer
from ml_core.optimize import COMPACT_TREES, QUANTIZABLE_OPS, Tolerance, compare, fit_compact, optimize, quantize_int8
from ml_core.spec import load_spec
from ml_core.training import TrainedModel, fit

MODEL = "lead_scorer"
BATCH = 1000
SAME = 1.05  # ratios within 5% either way are called "about the same": run-to-run noise on a shared machine


@dataclass
class Pair:
    family: str
    names: tuple[str, str]
    trained: TrainedModel
    optimized: bytes
    accuracy: dict[str, float]
    verdict: dict[str, Any]
    one_row_us: dict[str, float] | None = None
    rows_per_s: dict[str, float] | None = None


def build(trained: TrainedModel, seed: int) -> Pair:
    """The optimized artifact, its accuracy against the full one, and whether the guard would serve it."""
    split = trained.holdout
    assert split is not None
    if trained.family == "mlp":
        kind, names, candidate = "int8", ("float", "INT8"), quantize_int8(trained.onnx)
    else:
        kind, names = "compact", ("full", "compact")
        candidate = onnx_model.export(fit_compact(trained, seed), split.X_test.shape[1])
    accuracy = compare(trained.onnx, candidate, split.X_test, split.y_test, trained.spec.bands)
    card = optimize(trained, Tolerance(), seed).card
    # the verdict must be about the artifact measured here: both are rebuilt deterministically
    if card["kind"] != kind or any(card["guard"][k] != v for k, v in accuracy.items()):
        raise SystemExit(f"optimize() judged another artifact than the one measured: {card}")
    return Pair(trained.family, names, trained, candidate, accuracy, card)


def measure(pair: Pair, repeats: int, batches: int) -> None:
    """p50 of one-row calls and of 1,000-row batches, the two sessions taking turns on the same rows."""
    holdout = pair.trained.holdout
    assert holdout is not None  # fitted with holdout=0.2
    X = holdout.X_test.astype(np.float32)
    scorers = [OnnxScorer(MODEL, name, onnx) for name, onnx in zip(pair.names, (pair.trained.onnx, pair.optimized))]
    one = interleaved_timings_ms(turns(scorers, [X[i : i + 1] for i in range(len(X))]), repeats, warmup=50)
    full_batches = [X[i : i + BATCH] for i in range(0, len(X) - BATCH + 1, BATCH)]
    many = interleaved_timings_ms(turns(scorers, full_batches), batches, warmup=5)
    pair.one_row_us = {name: float(np.median(ms)) * 1000.0 for name, ms in one.items()}
    pair.rows_per_s = {name: BATCH / (float(np.median(ms)) / 1000.0) for name, ms in many.items()}


def turns(scorers: list[OnnxScorer], inputs: list[np.ndarray]) -> dict[str, Callable[[], object]]:
    """A call per scorer, each cycling over ``inputs`` on its own: taking turns, they score the same input."""

    def call(scorer: OnnxScorer, rows: itertools.cycle[np.ndarray]) -> Callable[[], object]:
        return lambda: scorer.predict_proba(next(rows))

    return {scorer.version: call(scorer, itertools.cycle(inputs)) for scorer in scorers}


def word(ratio: float, above: str, below: str, same: float = SAME) -> str:
    if ratio >= same:
        return above
    if ratio <= 1 / same:
        return below
    return "about the same"


def report(pairs: list[Pair], args: argparse.Namespace, started_load: str, seconds: float) -> None:
    tolerance = Tolerance()
    split = pairs[0].trained.holdout
    assert split is not None
    print("## Model lifecycle: float against INT8, full against compact (`bench/lifecycle_bench.py`)\n")
    print(
        f"`{MODEL}` spec, {args.rows:,} synthetic rows (seed {args.seed}): {len(pairs[0].trained.y):,} to fit, "
        f"{len(split.y_test):,} held out; each family fitted alone with `ml_core.training.fit` ({args.folds}-fold "
        f"cross-validation, `holdout=0.2`). ONNX Runtime sessions as served (`OnnxScorer`, one intra-op thread), the two artifacts "
        f"of a pair taking turns: {args.repeats:,} one-row calls and {args.batches:,} calls on {BATCH:,}-row batches "
        f"each, all on held-out rows. {started_load}. Whole run {seconds:.0f} s.\n"
    )
    print(f"Reproduce: `{' '.join(['.venv/bin/python bench/lifecycle_bench.py', *sys.argv[1:]])}`\n")
    print(f"| family | artifact | bytes | 1 row p50 µs | rows/s, batches of {BATCH:,} | held-out AUC |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for pair in pairs:
        assert pair.one_row_us is not None and pair.rows_per_s is not None
        aucs = (pair.accuracy["auc_full"], pair.accuracy["auc_optimized"])
        for name, onnx, auc in zip(pair.names, (pair.trained.onnx, pair.optimized), aucs):
            print(f"| `{pair.family}` | {name} | {len(onnx):,} | {pair.one_row_us[name]:.1f} | "
                  f"{pair.rows_per_s[name]:,.0f} | {auc:.4f} |")
    print(
        "\n| optimized against full | size, optimized / full | 1 row speed-up | batch speed-up | AUC change "
        "| largest probability change | label-band flips | guard (default `Tolerance`) |"
    )
    print("| --- | --- | --- | --- | ---: | ---: | ---: | --- |")
    for pair in pairs:
        assert pair.one_row_us is not None and pair.rows_per_s is not None
        full, opt = pair.names
        size = len(pair.optimized) / len(pair.trained.onnx)
        latency = pair.one_row_us[full] / pair.one_row_us[opt]
        throughput = pair.rows_per_s[opt] / pair.rows_per_s[full]
        a = pair.accuracy
        served = "serves it" if pair.verdict["served"] else pair.verdict["reason"]
        print(
            # a byte count does not drift from run to run: any difference is real
            f"| {opt} against {full} | {size:.3f}x ({word(1 / size, 'smaller', 'larger', same=1.0)}) "
            f"| {latency:.2f}x ({word(latency, 'faster', 'slower')}) "
            f"| {throughput:.2f}x ({word(throughput, 'faster', 'slower')}) "
            f"| {a['auc_change']:+.4f} | {a['max_abs_diff']:.4f} | {a['label_flip_rate']:.2%} | {served} |"
        )
    print(
        f"\nSpeed-ups are the full artifact's p50 time over the optimized one's (above 1: the optimized artifact "
        f"is faster); within {SAME - 1:.0%} either way they read \"about the same\". The guard serves an optimized artifact only if "
        f"the AUC drops at most {tolerance.max_auc_drop}, no probability moves more than {tolerance.max_abs_diff} "
        f"and at most {tolerance.max_flip_rate:.0%} of leads change label band (hot, warm, cold), on the same "
        f"held-out rows, and it is smaller than the full artifact; a compact ensemble's own ONNX export must also match its native model to "
        f"{tolerance.parity_tolerance:.0e}. Boosters: full {trees(pairs[-1].trained.model)}, compact "
        f"{trees_text(COMPACT_TREES)} (`ml_core.optimize.COMPACT_TREES`)."
    )
    mlp = pairs[0].trained.onnx
    print(
        f"\nThe float `mlp` file holds {weight_bytes(mlp):,} bytes of MatMul/Gemm weights in its {len(mlp):,} bytes: "
        f"INT8 can save at most three quarters of those ({0.75 * weight_bytes(mlp):,.0f} bytes), and adds a scale "
        f"and zero point per output channel and the operators that quantize activations at run time."
    )


def weight_bytes(onnx_bytes: bytes) -> int:
    """Bytes of the weights INT8 quantization shrinks: the initializers feeding MatMul/Gemm."""
    graph = load_from_string(onnx_bytes).graph
    feeding = {name for node in graph.node if node.op_type in QUANTIZABLE_OPS for name in node.input}
    return sum(numpy_helper.to_array(t).nbytes for t in graph.initializer if t.name in feeding)


def trees(model: Any) -> str:
    """The full booster's settings that ``COMPACT_TREES`` shrinks, read from the model itself."""
    params = model.get_params()
    return trees_text({key: params[key] for key in COMPACT_TREES})


def trees_text(params: dict[str, Any]) -> str:
    return ", ".join(f"`{key}={value}`" for key, value in params.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20_000, help="one-row calls per artifact")
    parser.add_argument("--batches", type=int, default=1000, help=f"{BATCH:,}-row calls per artifact")
    args = parser.parse_args()
    started, load = time.monotonic(), machine()
    spec = load_spec(Path(get_settings().models_dir), MODEL)
    frame = synthetic.generate(MODEL, args.rows, args.seed)
    data = training_set(spec, frame, f"synthetic(rows={args.rows}, seed={args.seed})")
    pairs = []
    for family in ("mlp", "gradient_boosting"):
        trained = fit(spec, data, seed=args.seed, folds=args.folds, holdout=0.2, families=[family])
        pairs.append(build(trained, args.seed))
    for pair in pairs:
        measure(pair, args.repeats, args.batches)
    report(pairs, args, load, time.monotonic() - started)


if __name__ == "__main__":
    main()
