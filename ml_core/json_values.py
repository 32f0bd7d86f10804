"""How validation names a JSON-shaped value's type in its messages, and whether text read from
bytes (with ``surrogateescape``) was UTF-8: one answer for leads, files and conversations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

NUMBER_TYPES = (int, float, np.integer, np.floating)
BOOL_TYPES = (bool, np.bool_)


def json_type(value: Any) -> str:
    """``null``, ``boolean``, ``string``, ``object``, ``array``, ``number``, else the Python type's name."""
    if value is None:
        return "null"
    if isinstance(value, BOOL_TYPES):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, NUMBER_TYPES):
        return "number"
    return type(value).__name__


def is_utf8(text: str) -> bool:
    """False for text read with ``surrogateescape`` from bytes that were not UTF-8 (or a lone surrogate)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
