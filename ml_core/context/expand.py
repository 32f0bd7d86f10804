"""The seam between conversations and the feature path: context leads become feature leads."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import numpy as np

from ml_core.context import derive as rules
from ml_core.context import phrases as phrase_files
from ml_core.context.parse import MAX_MESSAGES, MAX_TEXT_CHARS, parse_context
from ml_core.errors import SpecError
from ml_core.features import Encoded, LeadError, encode_leads
from ml_core.identifiers import id_problem
from ml_core.spec import ModelSpec

FEATURIZER_VERSION = "context-1"
"""Bumped whenever a rule in ``ml_core.context`` changes what a conversation derives."""


def phrases_of(spec: ModelSpec) -> phrase_files.Phrases:
    assert spec.context is not None
    return phrase_files.load(phrase_files.resolve(spec.context.directory, spec.context.phrases), spec.name)


def version(spec: ModelSpec) -> str | None:
    """The featurizer's full version for this spec: code version and phrase file digest."""
    if spec.context is None:
        return None
    phrases = phrases_of(spec)
    return f"{FEATURIZER_VERSION}+{phrases.name}:{phrases.sha256[:12]}"


def card_entry(spec: ModelSpec) -> dict[str, Any]:
    """What a model card records about the conversation featurizer (nothing for other specs)."""
    if spec.context is None:
        return {}
    phrases = phrases_of(spec)
    return {
        "context_featurizer": {
            "version": version(spec),
            "phrases": phrases.name,
            "phrases_sha256": phrases.sha256,
            "max_messages": MAX_MESSAGES,
            "max_text_chars": MAX_TEXT_CHARS,
        }
    }


def with_rules(explanation: dict[str, Any]) -> dict[str, Any]:
    """An explanation (``ml_core.explain``) of a context lead, each feature naming its context rule."""
    for entry in explanation.get("top", []):
        if entry.get("feature") in rules.RULES:
            entry["rule"] = rules.RULES[entry["feature"]]
    return explanation


def derive_features(spec: ModelSpec, context: Any) -> tuple[dict[str, Any] | None, list[list[str]]]:
    """The spec's features derived from one context, or ``None`` and the context's problems."""
    phrases = phrases_of(spec)
    conversation, problems = parse_context(context, phrases.employment)
    if conversation is None:
        return None, problems
    derived = rules.derive(conversation, phrases)
    missing = [name for name in spec.feature_names if name not in derived]
    if missing:  # a spec error, not the lead's: its [context] cannot serve these features
        raise SpecError(spec.name, f"[context] derives no {missing}; it derives {sorted(derived)}")
    return {name: derived[name] for name in spec.feature_names}, []


def expand_leads(
    spec: ModelSpec, leads: Sequence[Any]
) -> tuple[Sequence[Any], dict[int, dict[str, Any]], dict[int, LeadError]]:
    """``(leads_with_features, derived_by_index, errors_by_index)``.

    A lead ``{"id": ..., "context": {...}}`` becomes the lead with the features derived from its
    context (and any other key it had, for validation to judge); ``derived_by_index`` holds those
    features. A context that cannot be read, or one given with features when the spec's
    ``direct_features`` is ``refuse``, is an error naming the lead and the part. Leads without a
    context, and every lead of a spec without ``[context]``, pass through untouched.
    """
    if spec.context is None or not any(isinstance(lead, Mapping) and "context" in lead for lead in leads):
        return leads, {}, {}
    out = list(leads)
    derived_by_index: dict[int, dict[str, Any]] = {}
    errors: dict[int, LeadError] = {}
    names = set(spec.feature_names)
    for i, lead in enumerate(leads):
        if not isinstance(lead, Mapping) or "context" not in lead:
            continue
        lead_id, problems = _id(lead.get("id"))
        given = sorted(names.intersection(lead))
        if given and spec.context.direct_features == "refuse":
            problems.append(["context", f"given with features {given}: give one or the other (the spec's [context] direct_features is 'refuse')"])
        derived, context_problems = derive_features(spec, lead["context"])
        problems += context_problems
        if problems or derived is None:
            errors[i] = LeadError(i, lead_id, problems)
            continue
        rest = {k: v for k, v in lead.items() if k != "context"}
        derived = {**derived, **{k: rest[k] for k in given}}  # "override": what was given wins
        out[i] = {**rest, **derived}
        derived_by_index[i] = derived
    return out, derived_by_index, errors


def encode_with_context(
    spec: ModelSpec,
    leads: Sequence[Any],
    unknown_fields: Literal["reject", "ignore"] = "reject",
    dtype: type[np.floating[Any]] = np.float32,
) -> tuple[Encoded, dict[int, dict[str, Any]]]:
    """``encode_leads`` for leads that may come as conversations; also the derived features by input index."""
    expanded, derived, errors = expand_leads(spec, leads)
    if not errors:
        return encode_leads(spec, expanded, unknown_fields, dtype), derived
    keep = [i for i in range(len(leads)) if i not in errors]
    inner = encode_leads(spec, [expanded[i] for i in keep], unknown_fields, dtype)
    kept = np.asarray(keep, dtype=np.int64)
    all_errors = [replace(e, index=keep[e.index]) for e in inner.errors] + list(errors.values())
    return (
        Encoded(
            X=inner.X,
            ids=inner.ids,
            index=kept[inner.index],
            errors=sorted(all_errors, key=lambda e: e.index),
            n_input=len(leads),
        ),
        derived,
    )


def _id(value: Any) -> tuple[str | None, list[list[str]]]:
    problem = id_problem(value)
    return (None, [["id", problem]]) if problem else (str(value), [])
