"""How closely an ONNX export must reproduce its native model, in one place: training, retraining,
compact ensembles and the settings all default to it. A module of its own so the settings can
read it without importing the training stack."""

from __future__ import annotations

PARITY_TOLERANCE = 1e-4
"""The largest absolute difference in probability allowed between the ONNX and native models."""
