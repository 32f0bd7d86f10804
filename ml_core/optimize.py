"""A cheaper artifact to serve, when one exists and holds up: INT8 quantization or a compact ensemble.

ONNX Runtime's INT8 quantization rewrites MatMul/Gemm (and Conv) operators; it leaves
``ai.onnx.ml`` operators such as TreeEnsembleClassifier and LinearClassifier untouched. So:

- a model whose graph has MatMul/Gemm (the ``mlp`` family) is quantized dynamically, per channel;
- a tree ensemble (``gradient_boosting``) has nothing to quantize; the lever that works is a
  smaller ensemble (fewer, smaller trees) fitted on the same training rows;
- anything else (``logistic_regression`` exports to one LinearClassifier operator, ``blend`` to a
  LinearClassifier and a TreeEnsemble) gets neither, and the card says so.

Either candidate is held to one guard against the full float model: AUC change, the largest
probability change, and the share of leads whose label band (hot, warm, cold) changes, on the
held-out rows when training kept some, else on the fitted rows. On fitted rows the guard measures
fidelity to the full model; a compact ensemble fits them less tightly than the full one, so its
AUC change there errs on the side of refusing it. It is served only if all three are within tolerance and it is smaller than the full
artifact; otherwise the full model is. Size is the check because it is deterministic: on a network
as small as ours the quantization scales and operators outweigh the weights INT8 saves
(``bench/lifecycle_bench.py`` measures size, speed and accuracy side by side).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from ml_core import onnx_model
from ml_core.bands import cut_offs
from ml_core.onnx_model import OnnxScorer
from ml_core.parity import PARITY_TOLERANCE
from ml_core.spec import Bands
from ml_core.training import TrainedModel

QUANTIZABLE_OPS = frozenset({"MatMul", "Gemm", "Conv"})
COMPACT_TREES = {"max_iter": 40, "max_leaf_nodes": 7, "learning_rate": 0.2}


@dataclass(frozen=True)
class Tolerance:
    max_auc_drop: float = 0.005
    max_abs_diff: float = 0.1
    max_flip_rate: float = 0.02
    parity_tolerance: float = PARITY_TOLERANCE
    """A compact ensemble's own ONNX export must match its native model like any registered one."""


@dataclass
class Optimized:
    kind: str
    """``int8``, ``compact`` or ``none``."""
    served: bool
    onnx: bytes
    """What to serve: the optimized artifact if it passed, else the full one."""
    model: Any
    """The native model matching what is served (explanations read it)."""
    card: dict[str, Any] = field(default_factory=dict)


def optimize(trained: TrainedModel, tolerance: Tolerance, seed: int = 42) -> Optimized:
    """The artifact to serve for ``trained``, with a card section that says what was tried and why."""
    ops = operator_types(trained.onnx)
    if ops & QUANTIZABLE_OPS:
        return _guarded(trained, "int8", quantize_int8(trained.onnx), trained.model, tolerance)
    if trained.family == "gradient_boosting":
        compact = fit_compact(trained, seed)
        return _guarded(trained, "compact", onnx_model.export(compact, len(trained.spec.columns)), compact, tolerance)
    return Optimized(
        "none", False, trained.onnx, trained.model,
        {
            "kind": "none",
            "served": False,
            "reason": f"no quantizable operators ({', '.join(sorted(ops))}: INT8 quantization covers "
                      f"{', '.join(sorted(QUANTIZABLE_OPS))}) and not a tree ensemble to compress",
            "size_bytes": len(trained.onnx),
        },
    )


def operator_types(onnx_bytes: bytes) -> set[str]:
    return {node.op_type for node in onnx.load_from_string(onnx_bytes).graph.node}


def quantize_int8(onnx_bytes: bytes) -> bytes:
    """Dynamic INT8 quantization of MatMul/Gemm weights, per output channel."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(onnx_bytes)
    # skl2onnx may import the default domain twice; the quantizer then fails to find "ai.onnx".
    seen: dict[str, Any] = {}
    for opset in model.opset_import:
        seen.setdefault(opset.domain, opset)
    del model.opset_import[:]
    model.opset_import.extend(seen.values())
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        quantize_dynamic(src, dst, per_channel=True, weight_type=QuantType.QInt8)
        return dst.read_bytes()


def fit_compact(trained: TrainedModel, seed: int) -> HistGradientBoostingClassifier:
    """A smaller booster on the same training rows (same family, so explanations still work)."""
    compact = HistGradientBoostingClassifier(**COMPACT_TREES, random_state=seed)
    with threadpool_limits(limits=1):
        return compact.fit(trained.X, trained.y)


def compare(full: bytes, candidate: bytes, X: np.ndarray, y: np.ndarray, bands: Bands) -> dict[str, float]:
    """AUC of both on (X, y), the largest probability change and the share of label-band flips."""
    X32 = X.astype(np.float32)
    p_full = OnnxScorer("full", "full", full).predict_proba(X32)
    p_cand = OnnxScorer("candidate", "candidate", candidate).predict_proba(X32)
    auc_full, auc_cand = float(roc_auc_score(y, p_full)), float(roc_auc_score(y, p_cand))
    hot, warm = cut_offs(bands, p_full)  # bands by share: where the full model's held-out scores put them

    def band(p: np.ndarray) -> np.ndarray:
        s = np.round(p * 100.0, 2)
        return np.where(s >= hot, 2, np.where(s >= warm, 1, 0))

    return {
        "auc_full": round(auc_full, 5),
        "auc_optimized": round(auc_cand, 5),
        "auc_change": round(auc_cand - auc_full, 5),
        "max_abs_diff": round(float(np.max(np.abs(p_cand - p_full))), 5),
        "label_flip_rate": round(float(np.mean(band(p_cand) != band(p_full))), 5),
        "rows": int(len(y)),
    }


def _guarded(trained: TrainedModel, kind: str, candidate: bytes, native: Any, tolerance: Tolerance) -> Optimized:
    X, y = trained.evaluation_rows()
    numbers = compare(trained.onnx, candidate, X, y, trained.spec.bands)
    failures = []
    if -numbers["auc_change"] > tolerance.max_auc_drop:
        failures.append(f"AUC drops {-numbers['auc_change']:.4f} > {tolerance.max_auc_drop}")
    if numbers["max_abs_diff"] > tolerance.max_abs_diff:
        failures.append(f"a probability moves {numbers['max_abs_diff']:.4f} > {tolerance.max_abs_diff}")
    if numbers["label_flip_rate"] > tolerance.max_flip_rate:
        failures.append(f"{numbers['label_flip_rate']:.2%} of labels flip > {tolerance.max_flip_rate:.2%}")
    if len(candidate) >= len(trained.onnx):
        failures.append(f"not smaller ({len(candidate)} bytes against {len(trained.onnx)}): nothing to gain")
    if kind == "compact":
        numbers["parity_max_abs_diff"] = onnx_model.parity(candidate, native, X)
        if numbers["parity_max_abs_diff"] > tolerance.parity_tolerance:
            failures.append(f"ONNX parity {numbers['parity_max_abs_diff']:.2e} > {tolerance.parity_tolerance:.0e}")
    served = not failures
    card = {
        "kind": kind,
        "served": served,
        **({"compact_params": COMPACT_TREES} if kind == "compact" else {}),
        "guard": numbers,
        "tolerance": {"max_auc_drop": tolerance.max_auc_drop, "max_abs_diff": tolerance.max_abs_diff, "max_flip_rate": tolerance.max_flip_rate},
        "size_bytes": {"full": len(trained.onnx), kind: len(candidate)},
        "reason": "within tolerance: serving the optimized artifact" if served else "refused, serving the full model: " + "; ".join(failures),
    }
    if served:
        return Optimized(kind, True, candidate, native, card)
    return Optimized(kind, False, trained.onnx, trained.model, card)
