"""ONNX export with skl2onnx and the ONNX Runtime scorer that serves it."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import onnxruntime as ort

from ml_core.decision import Decision

INPUT = "features"
PROBABILITIES = "probabilities"


def export(model: object, n_columns: int) -> bytes:
    """The classifier as ONNX: one float32 matrix in (NaN for a blank), class probabilities out (no ZipMap)."""
    # Imported here: skl2onnx pulls in scikit-learn, which serving processes never need.
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    from ml_core.imputation import register_onnx_converter

    register_onnx_converter()

    onx = to_onnx(
        model,
        initial_types=[(INPUT, FloatTensorType([None, n_columns]))],
        options={"zipmap": False},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    data: bytes = onx.SerializeToString()
    return data


class OnnxScorer:
    """One ONNX Runtime session, single-threaded: a host runs one per worker process.

    ``decision`` holds the version card's resolved escalation threshold and band cut-offs
    (``ml_core.decision``); None decides from the spec.
    """

    served_by = "onnx"
    reason = ""

    def __init__(
        self, name: str, version: str, onnx_bytes: bytes, decision: Decision | None = None, file_id: tuple[int, ...] | None = None
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only: skl2onnx graphs carry unused initializers ORT warns about on every load
        self.name, self.version, self.decision = name, version, decision
        self.file_id = file_id
        """Inode, size and mtime of the file the bytes were read from: the pool re-verifies it when they change."""
        self._session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])

    @property
    def metadata(self) -> dict[str, str]:
        """The model's ``metadata_props`` (``ml_core.identity`` keys among them)."""
        return dict(self._session.get_modelmeta().custom_metadata_map)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        (proba,) = self._session.run([PROBABILITIES], {INPUT: X})
        return np.asarray(proba[:, 1], dtype=np.float64)

    def route(self, X: np.ndarray) -> tuple[np.ndarray, OnnxScorer]:
        return self.predict_proba(X), self


class Classifier(Protocol):
    """A fitted scikit-learn classifier, as far as parity needs one."""

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def parity(onnx_bytes: bytes, model: Classifier, X: np.ndarray) -> float:
    """Largest |ONNX - sklearn| positive-class probability over the rows of X (blanks as NaN)."""
    if not len(X):
        return 0.0
    onnx_p = OnnxScorer("parity", "check", onnx_bytes).predict_proba(X.astype(np.float32))
    native_p = model.predict_proba(X)[:, 1]
    return float(np.max(np.abs(onnx_p - native_p)))
