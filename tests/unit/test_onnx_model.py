from __future__ import annotations

import numpy as np

from ml_core import synthetic
from ml_core.dataset import training_set
from ml_core.onnx_model import OnnxScorer

from .helpers import MODEL


def test_onnx_scorer_agrees_with_the_native_model_on_held_out_rows(spec, served_registry):
    # Rows from a seed the model never saw.
    X = training_set(spec, synthetic.generate(MODEL, 2000, seed=4321), "held-out").X
    artifact = served_registry.load(MODEL)
    scorer = OnnxScorer(MODEL, artifact.version, artifact.onnx)
    native = served_registry.load_native(MODEL, artifact.version)

    onnx_p = scorer.predict_proba(X)
    native_p = native.predict_proba(X)[:, 1]

    assert onnx_p.shape == (2000,) and onnx_p.dtype == np.float64
    assert np.all((onnx_p >= 0) & (onnx_p <= 1))
    assert np.max(np.abs(onnx_p - native_p)) <= 1e-4
    # a model that said the same thing for everyone would pass parity trivially
    assert np.ptp(onnx_p) > 0.2


def test_onnx_scorer_identity(served_registry):
    artifact = served_registry.load(MODEL)
    scorer = OnnxScorer(MODEL, artifact.version, artifact.onnx)
    assert (scorer.name, scorer.version, scorer.served_by, scorer.reason) == (MODEL, "v1", "onnx", "")
