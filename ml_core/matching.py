"""Rank a list of properties for one lead with the pair models (match, interest, viewing).

One pass per request, whatever the number of models: the lead's preferences and every property
are validated once (``ml_core.features``, property errors name the property id), the pair
features are derived once by the models' shared featurizer, vectorized over the properties, and
each model scores all valid pairs in one call. A bad property gets its own error entry and the
others are still ranked, as in ``predict_batch``; bad preferences fail the request with
``InvalidLeadError`` (fields named ``preferences.<field>``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from ml_core.errors import InvalidBatchError, InvalidLeadError, SpecError
from ml_core.features import LeadError, encode_columns, encode_leads, fields
from ml_core.featurizers import Featurizer, load_featurizer
from ml_core.pool import Served
from ml_core.scoring import Scorer, decision_of
from ml_core.spec import ModelSpec, Schema

_LEAD_ID_ONLY = Schema("lead", ())
PREFERENCES: Final = "preferences"
PROPERTY: Final = "property"


@dataclass(frozen=True)
class ScoredPair:
    """One returned match as one model scored it, with the derived features it saw: what an
    outcome of this (lead, property) pair is later trained on."""

    model: str
    lead_id: str
    property_id: str
    rank: int
    version: str
    probability: float
    features: dict[str, Any]
    row: np.ndarray
    """The encoded feature row the model scored: a shadow challenger scores the very same one."""


def scores_pairs(spec: ModelSpec) -> bool:
    """Whether the model scores (lead, property) pairs rather than leads alone."""
    return spec.featurizer is not None and PROPERTY in load_featurizer(spec.featurizer).inputs


def rank_properties(
    models: Sequence[Served],
    lead: Any,
    properties: Any,
    *,
    top_k: int | None = 10,
    order_by: str | None = None,
    unknown_fields: Literal["reject", "ignore"] = "reject",
    max_properties: int | None = None,
    on_scored: Callable[[list[ScoredPair]], None] | None = None,
    scored_limit: int | None = None,
    scorers: Mapping[str, Scorer] | None = None,
) -> dict[str, Any]:
    """The lead's properties best first by ``order_by`` (default: the first model), each with every model's score.

    ``top_k`` None returns every valid property. Other fields of ``lead`` than ``id`` and
    ``preferences`` are ignored: a full CRM lead can be passed as it is. ``on_scored`` receives
    the returned matches (the best ``scored_limit`` of them; None: all) of every model that served
    them itself (not its rules). ``scorers``
    replaces a model's champion for this lead (a canary challenger).
    """
    started = time.perf_counter()
    featurizer = _shared_featurizer(models)
    order_by = order_by or models[0].spec.name
    if order_by not in {m.spec.name for m in models}:
        raise InvalidBatchError(f"order_by must name one of the models {[m.spec.name for m in models]}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        raise InvalidBatchError("top_k must be a positive integer, or null for every property")
    lead_id, preferences = _lead_preferences(featurizer, lead, unknown_fields)
    if not isinstance(properties, (list, tuple)):
        raise InvalidBatchError("properties must be a JSON array")
    if max_properties is not None and len(properties) > max_properties:
        raise InvalidBatchError(f"{len(properties)} properties exceed max_batch_size={max_properties}")

    listings = encode_leads(featurizer.inputs[PROPERTY], properties, unknown_fields, entity=PROPERTY)
    inputs = {PREFERENCES: preferences, PROPERTY: fields(featurizer.inputs[PROPERTY], listings.X)}
    problems: dict[int, list[list[str]]] = defaultdict(list)  # by row of the valid listings
    for broken in featurizer.check(inputs):
        if broken.role == PREFERENCES and broken.rows.any():
            raise InvalidLeadError(lead_id, [[f"{PREFERENCES}.{broken.field}", broken.problem]])
        if broken.role == PROPERTY:
            for row in np.flatnonzero(broken.rows):
                problems[int(row)].append([broken.field, broken.problem])
    matrices, derived_columns = {}, {}
    for served, columns in zip(models, featurizer.features([m.spec for m in models], inputs)):
        derived_columns[served.spec.name] = columns
        derived = encode_columns(served.spec, columns, listings.ids, entity=PROPERTY)
        for error in derived.errors:  # a derived feature outside a spec's declared range
            problems[error.index].extend(error.problems)
        X = np.zeros((len(listings.ids), derived.X.shape[1]), dtype=np.float32)
        X[derived.index] = derived.X
        matrices[served.spec.name] = X
    valid = np.ones(len(listings.ids), dtype=bool)
    valid[list(problems)] = False
    probabilities: dict[str, np.ndarray] = {}
    used: dict[str, Scorer] = {}
    chosen = {s.spec.name: (scorers or {}).get(s.spec.name, s.scorer) for s in models}
    for s in models:
        if valid.any():  # route: a breaker-guarded scorer says whether its model or its rules answered
            p, used[s.spec.name] = chosen[s.spec.name].route(matrices[s.spec.name][valid])
            probabilities[s.spec.name] = np.clip(p, 0.0, 1.0)
        else:
            probabilities[s.spec.name], used[s.spec.name] = np.zeros(0), chosen[s.spec.name]
    ids = [listings.ids[i] for i in np.flatnonzero(valid)]
    order = np.argsort(-probabilities[order_by], kind="stable")[:top_k]
    if on_scored is not None:
        reported = order[:scored_limit]
        rows = np.flatnonzero(valid)[reported]
        on_scored([
            ScoredPair(name, lead_id, listings.ids[row], rank, used[name].version, float(probabilities[name][k]),
                       {f: column[row].item() for f, column in derived_columns[name].items()}, matrices[name][row])
            for name in probabilities if used[name].served_by == "onnx"
            for rank, (k, row) in enumerate(zip(reported.tolist(), rows.tolist()), start=1)
        ])
    return {
        "lead_id": lead_id,
        "order_by": order_by,
        "matches": [
            {"property_id": ids[k], "rank": rank, "scores": {s.spec.name: _score(s, used[s.spec.name], probabilities[s.spec.name][k]) for s in models}}
            for rank, k in enumerate(order.tolist(), start=1)
        ],
        "errors": _errors(listings.errors, listings.index, listings.ids, problems),
        "properties": {"received": len(properties), "scored": len(ids)},
        "models": {name: _served(scorer) for name, scorer in used.items()},
        "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
    }


def _shared_featurizer(models: Sequence[Served]) -> Featurizer:
    names = {m.spec.featurizer for m in models}
    if not models or len(names) != 1 or None in names:
        raise SpecError(",".join(m.spec.name for m in models), "ranking properties needs pair models sharing one featurizer")
    featurizer = load_featurizer(names.pop())  # type: ignore[arg-type]  # None excluded above
    if set(featurizer.inputs) != {PREFERENCES, PROPERTY}:
        raise SpecError(featurizer.name, f"a property ranking featurizer takes {PREFERENCES!r} and {PROPERTY!r} inputs")
    return featurizer


def _lead_preferences(featurizer: Featurizer, lead: Any, unknown_fields: Literal["reject", "ignore"]) -> tuple[str, dict[str, np.ndarray]]:
    checked = encode_leads(_LEAD_ID_ONLY, [lead], "ignore")
    if checked.errors:
        raise checked.errors[0].to_exception()
    lead_id = checked.ids[0]
    raw = lead.get(PREFERENCES)
    if not isinstance(raw, Mapping):
        raise InvalidLeadError(lead_id, [[PREFERENCES, "missing (required)" if raw is None else "expected a JSON object"]])
    schema = featurizer.inputs[PREFERENCES]
    encoded = encode_leads(schema, [{**raw, "id": lead_id}], unknown_fields)
    if encoded.errors:
        raise InvalidLeadError(lead_id, [[f"{PREFERENCES}.{f}", p] for f, p in encoded.errors[0].problems])
    return lead_id, fields(schema, encoded.X)


def _score(served: Served, scorer: Scorer, probability: float) -> dict[str, Any]:
    """A match's score and label, by the card of the version that scored it (``ml_core.decision``)."""
    score = round(float(probability) * 100.0, 2)
    return {"score": score, "probability": round(float(probability), 6), "label": decision_of(scorer, served.spec).label(score)}


def _served(scorer: Scorer) -> dict[str, Any]:
    return {
        "model_version": scorer.version,
        "served_by": scorer.served_by,
        **({"fallback_reason": scorer.reason} if scorer.served_by == "fallback" else {}),
    }


def _errors(
    invalid: list[LeadError], index: np.ndarray, ids: list[str], problems: dict[int, list[list[str]]]
) -> list[dict[str, Any]]:
    """Every invalid property in input order: failed its schema, or a cross-field or derived check."""
    found = invalid + [LeadError(int(index[row]), ids[row], p, PROPERTY) for row, p in problems.items()]
    return [e.to_json() for e in sorted(found, key=lambda e: e.index)]
