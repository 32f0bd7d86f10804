"""A lead profile: one flat lead object read by several models, each taking the fields it names.

A CRM keeps one record per lead; ``score_lead_profile`` scores it with every lead-level model
(conversion, churn) and ranks properties from its ``preferences``. Each model gets ``id`` and
its own features (a field two specs share, such as ``response_time_hours``, goes to both); a
field no model names is unknown, rejected or ignored by the ``unknown_fields`` setting.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from ml_core.errors import InvalidLeadError
from ml_core.features import encode_leads
from ml_core.spec import ModelSpec, Schema

_MAX_NAME = 64  # as in ml_core.features: a huge key cannot bloat an error


def split_lead(
    lead: Any,
    specs: Sequence[ModelSpec],
    *,
    nested: Sequence[str] = (),
    unknown_fields: Literal["reject", "ignore"] = "reject",
) -> tuple[str, dict[str, dict[str, Any]]]:
    """The lead's id, and each spec's view of ``lead``: ``{"id", <its features>}``.

    ``nested`` names fields that other code reads (``preferences``), known but in no view.
    """
    checked = encode_leads(Schema("lead", ()), [lead], "ignore")
    if checked.errors:
        raise checked.errors[0].to_exception()
    assert isinstance(lead, Mapping)  # encode_leads reported anything else
    known = {"id", *nested, *(name for spec in specs for name in spec.feature_names)}
    if unknown_fields == "reject":
        unknown = sorted(str(key)[:_MAX_NAME] for key in lead if key not in known)
        if unknown:
            raise InvalidLeadError(checked.ids[0], [[key, "unknown field"] for key in unknown])
    return checked.ids[0], {
        spec.name: {key: lead[key] for key in ("id", *spec.feature_names) if key in lead} for spec in specs
    }
