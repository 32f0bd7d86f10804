"""Score a lead from its conversation: the ten lead_scorer features derived from a ``context``.

    {"id": "lead-7", "context": {
        "messages": [{"from": "agent" | "lead", "at": "<ISO-8601>", "text": "..."}, ...],
        "budget": {"min": 300000, "max": 450000},          # optional, as are the rest
        "timeline": "within 3 months" | "2027-03-01",
        "employment": {"status": "employed", "years_in_role": 4},
        "previous_transactions": 1,
        "household_size": 3}}

A spec opts in with a ``[context]`` table (``ml_core.spec.ContextInput``). ``parse`` checks a
context within fixed bounds, ``phrases`` compiles the phrase lists (data files), ``derive``
applies one rule per feature, ``expand`` is the seam the scoring entry points call. Derivation is
deterministic: it reads no clock (a timeline date is measured from the last message), so the
same context always gives the same features. Message text never leaves this package: problems
name the part of the context (``context.messages[3].at``), never what it says.
"""

from ml_core.context.expand import (
    FEATURIZER_VERSION,
    card_entry,
    derive_features,
    encode_with_context,
    expand_leads,
    version,
    with_rules,
)
from ml_core.context.parse import MAX_MESSAGES, MAX_TEXT_CHARS

__all__ = [
    "FEATURIZER_VERSION",
    "MAX_MESSAGES",
    "MAX_TEXT_CHARS",
    "card_entry",
    "derive_features",
    "encode_with_context",
    "expand_leads",
    "version",
    "with_rules",
]
