"""What a caller may name: models by identifier, records by printable id.

A model name reaches the filesystem (``models/<name>/``) and Redis keys, so it is an identifier,
never a path: ``lead_scorer/../churn_predictor`` or ``/etc`` would otherwise load another model's
files (or a directory the caller placed) and file outcomes under an alias nobody retrains.
Record ids reach logs and the outcome store, so they are printable text: a newline, an escape
sequence or a NUL in an id would forge log lines.
"""

from __future__ import annotations

import re
from typing import Any

from ml_core.errors import ModelNotFoundError

MODEL_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
MODEL_NAME_RULE = "a model name is 1-64 characters of a-z, 0-9 and _, starting with a letter"
MAX_ID_LENGTH = 128
DEFAULT_MODEL = "lead_scorer"
"""The model a task, the client and the CLI serve when none is named."""


def model_name(value: Any) -> str:
    """``value`` if it is a valid model name, else ``ModelNotFoundError`` (which never echoes it)."""
    if isinstance(value, str) and MODEL_NAME.fullmatch(value):
        return value
    raise ModelNotFoundError("(invalid name)", problem=MODEL_NAME_RULE)


def id_problem(value: Any) -> str:
    """Why ``value`` cannot be a record id (empty string: it can). Integers are taken as their text."""
    if value is None:
        return "missing (required)"
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "expected a string or integer id"
    text = str(value)
    if not 0 < len(text) <= MAX_ID_LENGTH:
        return f"must be 1 to {MAX_ID_LENGTH} characters"
    if not text.isprintable():
        return "must be printable text (no control characters, newlines or escape sequences)"
    return ""


def model_names(values: Any) -> list[str] | None:
    """A list of model names (``None``: every model), each checked like ``model_name``."""
    if values is None:
        return None
    if not isinstance(values, list):
        raise ModelNotFoundError("(invalid name)", problem="expected a list of model names")
    return [model_name(v) for v in values]
