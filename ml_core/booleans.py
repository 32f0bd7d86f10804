"""The one list of boolean spellings, read the same by training tables and lead files.

A cell is true if it is (case-insensitively, after trimming) one of ``TRUE``, false if one of
``FALSE``; anything else is not a boolean, and validation names it.
"""

from __future__ import annotations

TRUE = frozenset({"true", "t", "yes", "y", "1"})
FALSE = frozenset({"false", "f", "no", "n", "0"})


def parse(text: str) -> bool | None:
    """``True`` / ``False`` for a known spelling, ``None`` for anything else."""
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    return None


def is_spelling(text: str) -> bool:
    return parse(text) is not None
