"""Declarative model specs: ``models/<name>/spec.toml`` parsed into frozen dataclasses."""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ml_core.errors import ModelNotFoundError, SpecError, listing
from ml_core.identifiers import MODEL_NAME, model_name
from ml_core.ranking import METRICS

Kind = Literal["numeric", "integer", "boolean", "categorical", "tags"]
_KINDS = ("numeric", "integer", "boolean", "categorical", "tags")
_VOCABULARY_KINDS = ("categorical", "tags")  # kinds whose values come from ``categories``
Missing = Literal["refuse", "allowed"]
Unseen = Literal["refuse", "other"]


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    min: float = -math.inf
    max: float = math.inf
    categories: tuple[str, ...] = ()
    default: Any = None
    description: str = ""
    missing: Missing = "refuse"
    """``allowed``: a blank (absent, ``null``, an empty cell) is encoded as NaN and the model learns
    what it means; ``refuse``: a blank takes ``default``, or is an error when there is none."""
    unseen: Unseen = "refuse"
    """Categorical only. ``other``: a category not in ``categories`` is encoded as none of them
    (an all-zero one-hot); ``refuse``: it is an error."""

    @property
    def required(self) -> bool:
        return self.default is None and self.missing == "refuse"

    @property
    def may_be_missing(self) -> bool:
        return self.missing == "allowed"

    @property
    def columns(self) -> tuple[str, ...]:
        """Names of the encoded matrix columns: one, or one per category (one-hot, or multi-hot for tags)."""
        if self.kind in _VOCABULARY_KINDS:
            return tuple(f"{self.name}={c}" for c in self.categories)
        return (self.name,)


@dataclass(frozen=True)
class Schema:
    """Named, typed fields that validation checks: a model's features, or a featurizer's raw input."""

    name: str
    features: tuple[Feature, ...]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for f in self.features for c in f.columns)


def parse_schema(name: str, fields: list[dict[str, Any]]) -> Schema:
    """A schema from feature tables in the spec format (``name``, ``kind``, ``min``, ...)."""
    features = tuple(_parse_feature(name, f) for f in fields)
    if len({f.name for f in features}) != len(features) or "id" in {f.name for f in features}:
        raise SpecError(name, "field names repeat or include 'id'")
    return Schema(name=name, features=features)


@dataclass(frozen=True)
class Bands:
    """Lower cut-offs on the 0-100 score: ``score >= hot`` is hot, ``>= warm`` warm, else cold.

    By share (``hot_share``, ``warm_share`` set), training resolves the shares into cut-offs on the
    out-of-fold scores and the card keeps them (``ml_core.bands``); ``hot``/``warm`` then label
    what has no card: the rules, and versions trained before shares existed. A spec that gives
    shares only gets them read on a uniform 0-100 scale there (``hot = 100 x (1 - hot_share)``).
    """

    hot: float
    warm: float
    hot_share: float | None = None
    warm_share: float | None = None

    @property
    def by_share(self) -> bool:
        return self.hot_share is not None

    def label(self, score: float) -> str:
        return "hot" if score >= self.hot else "warm" if score >= self.warm else "cold"


DEFAULT_ESCALATION_BUDGET = 0.25
"""Share of leads escalated when a spec states no escalation rule: the design's 20-30 %."""


@dataclass(frozen=True)
class EscalationRule:
    """How training sets a model's escalation threshold (``ml_core.escalation``): exactly one of

    - ``budget``: the share of leads escalated; the guarantee it buys is derived;
    - ``alpha``: the guarantee (at most this share of all leads is handled by the fast path and
      labelled wrong); the share escalated is derived;
    - ``threshold``: the legacy ``confidence_threshold``, served exactly as before (escalated when
      ``max(p, 1 - p) < threshold``); budget and guarantee are derived and recorded.
    """

    kind: Literal["budget", "alpha", "threshold"]
    value: float


@dataclass(frozen=True)
class Fallback:
    """Rule-based model: ``p = sigmoid(intercept + sum(weight * value))``.

    A numeric feature's weight multiplies its value; a categorical feature's weights are a
    table by category (absent categories weigh 0). A missing value contributes 0.
    """

    intercept: float
    weights: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ContextInput:
    """A spec's ``[context]`` table: its leads may come as a conversation (``ml_core.context``)."""

    phrases: str
    """The phrase file: beside the spec if one is there, else the one shipped in ``ml_core.context``."""
    directory: str | None
    """The spec's directory (None for a spec parsed from data)."""
    direct_features: Literal["refuse", "override"] = "refuse"
    """A lead with both a context and features: ``refuse`` it, or let the given features ``override``."""


@dataclass(frozen=True)
class ModelSpec(Schema):
    """A model: its features (the schema), target, metric and gate, bands and rule-based fallback.

    ``fallback`` is None when the spec has no ``[fallback]``: the rules then come from the
    champion's card (``ml_core.derived_rules``)."""

    description: str
    target: str
    metric: str
    quality_gate: float
    bands: Bands
    fallback: Fallback | None
    confidence_threshold: float | None
    sha256: str
    escalation: EscalationRule = EscalationRule("budget", DEFAULT_ESCALATION_BUDGET)
    featurizer: str | None = None
    """``ml_core.featurizers.<name>`` derives the features from raw inputs; None: the request is the features."""
    context: ContextInput | None = None


def spec_path(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / model_name(name) / "spec.toml"


def available_models(models_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(models_dir).glob("*/spec.toml") if MODEL_NAME.fullmatch(p.parent.name))


def load_spec(models_dir: Path, name: str) -> ModelSpec:
    path = spec_path(models_dir, name)
    if not path.is_file():
        raise ModelNotFoundError(name, problem="no spec.toml in the models directory")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(name, f"not valid TOML: {exc}") from None
    return parse_spec(name, data, hashlib.sha256(raw).hexdigest(), directory=path.parent)


def parse_spec(name: str, data: dict[str, Any], sha256: str = "", directory: Path | None = None) -> ModelSpec:
    """A spec from its parsed TOML. Anything malformed raises ``SpecError`` naming the problem."""
    try:
        return _parse_spec(name, data, sha256, directory)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise SpecError(name, f"malformed value ({exc.__class__.__name__}: {exc})") from None


def _parse_spec(name: str, data: dict[str, Any], sha256: str, directory: Path | None) -> ModelSpec:
    def need(key: str, where: dict[str, Any] = data) -> Any:
        if key not in where:
            raise SpecError(name, f"missing key {key!r}")
        return where[key]

    features = tuple(_parse_feature(name, f) for f in need("features"))
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise SpecError(name, "feature names repeat")
    if need("target") in names or "id" in names:
        raise SpecError(name, "the target and 'id' cannot also be features")
    bands = _parse_bands(name, need("bands"))
    fb = data.get("fallback")
    weights = dict(fb.get("weights", {})) if fb is not None else {}
    unknown = set(weights) - set(names)
    if unknown:
        raise SpecError(name, f"fallback weights name unknown features {listing(sorted(unknown))}")
    threshold = data.get("confidence_threshold")
    return ModelSpec(
        name=name,
        description=str(data.get("description", "")),
        target=need("target"),
        features=features,
        metric=_metric_name(name, data.get("metric", "roc_auc")),
        quality_gate=float(need("quality_gate")),
        bands=bands,
        fallback=None if fb is None else Fallback(intercept=float(fb.get("intercept", 0.0)), weights=weights),
        confidence_threshold=None if threshold is None else float(threshold),
        sha256=sha256,
        featurizer=_featurizer_name(name, data.get("featurizer")),
        escalation=_parse_escalation(name, data),
        context=_context(name, data.get("context"), directory),
    )


def _parse_bands(name: str, bands: dict[str, Any]) -> Bands:
    if not isinstance(bands, dict):
        raise SpecError(name, "bands must be a table")
    has_cuts, has_shares = "hot" in bands or "warm" in bands, "hot_share" in bands or "warm_share" in bands
    if not has_cuts and not has_shares:
        raise SpecError(name, "bands need hot_share and warm_share (by share) or hot and warm (fixed cut-offs)")
    hot_share = warm_share = None
    if has_shares:
        if "hot_share" not in bands or "warm_share" not in bands:
            raise SpecError(name, f"bands by share need both 'hot_share' and 'warm_share', got {sorted(bands)}")
        hot_share, warm_share = float(bands["hot_share"]), float(bands["warm_share"])
        if not (hot_share > 0 and warm_share >= 0 and hot_share + warm_share < 1):
            raise SpecError(name, f"bands need 0 < hot_share, 0 <= warm_share, hot_share + warm_share < 1, got {hot_share}, {warm_share}")
    if has_cuts:
        if "hot" not in bands or "warm" not in bands:
            raise SpecError(name, f"missing key {'warm' if 'hot' in bands else 'hot'!r} in bands")
        hot, warm = float(bands["hot"]), float(bands["warm"])
    else:
        hot, warm = 100.0 * (1 - hot_share), 100.0 * (1 - hot_share - warm_share)  # type: ignore[operator]
    if not 0 <= warm <= hot <= 100:
        raise SpecError(name, f"bands need 0 <= warm <= hot <= 100, got warm={warm} hot={hot}")
    return Bands(hot=hot, warm=warm, hot_share=hot_share, warm_share=warm_share)


_ESCALATION_KEYS: dict[str, Literal["budget", "alpha", "threshold"]] = {
    "escalation_budget": "budget", "escalation_alpha": "alpha", "confidence_threshold": "threshold"
}


def _parse_escalation(name: str, data: dict[str, Any]) -> EscalationRule:
    given = [key for key in _ESCALATION_KEYS if key in data]
    if len(given) > 1:
        raise SpecError(name, f"set one escalation rule, not {given}: a budget, a guarantee or a threshold")
    if not given:
        return EscalationRule("budget", DEFAULT_ESCALATION_BUDGET)
    key = given[0]
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(name, f"{key} must be a number, got {value!r}")
    value = float(value)
    bounds = (0.5, 1.0) if key == "confidence_threshold" else (0.0, 1.0)
    if not bounds[0] <= value <= bounds[1] or (key != "confidence_threshold" and value in bounds):
        raise SpecError(name, f"{key} must lie in {'[0.5, 1]' if key == 'confidence_threshold' else '(0, 1)'}, got {value}")
    return EscalationRule(_ESCALATION_KEYS[key], value)



def _context(model: str, raw: Any, directory: Path | None) -> ContextInput | None:
    if raw is None:
        return None
    phrases, direct = raw.get("phrases"), raw.get("direct_features", "refuse")
    if not isinstance(phrases, str) or not phrases.endswith(".toml") or Path(phrases).name != phrases:
        raise SpecError(model, f"[context] phrases must be a .toml file name, got {phrases!r}")
    if direct not in ("refuse", "override"):
        raise SpecError(model, f"[context] direct_features must be 'refuse' or 'override', got {direct!r}")
    return ContextInput(phrases=phrases, directory=None if directory is None else str(directory), direct_features=direct)


def _metric_name(model: str, value: Any) -> str:
    if value not in METRICS:
        raise SpecError(model, f"metric {value!r} is not one of {', '.join(METRICS)}")
    return str(value)


def _featurizer_name(model: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.isidentifier():
        raise SpecError(model, f"featurizer must be a module name, got {value!r}")
    return value


def _check_default(
    model: str, fname: str, kind: str, lo: float, hi: float, categories: tuple[str, ...], default: Any
) -> None:
    """A bad default would blame every lead that omits the field: refuse it in the spec."""
    if kind == "categorical":
        ok = default in categories
    elif isinstance(default, bool):
        ok = kind == "boolean"
    elif isinstance(default, (int, float)):
        ok = lo <= default <= hi and (kind != "integer" or float(default).is_integer())
        ok = ok and (kind != "boolean" or default in (0, 1))
    else:
        ok = False
    if not ok:
        raise SpecError(model, f"default {default!r} of feature {fname!r} is not a valid {kind} value")


def _parse_feature(model: str, raw: dict[str, Any]) -> Feature:
    fname = raw.get("name")
    kind = raw.get("kind")
    if not isinstance(fname, str) or kind not in _KINDS:
        raise SpecError(model, f"feature {fname!r} needs a name and a kind in {_KINDS}")
    categories = tuple(str(c) for c in raw.get("categories", ()))
    if kind in _VOCABULARY_KINDS and not categories:
        raise SpecError(model, f"{kind} feature {fname!r} lists no categories")
    lo, hi = (0.0, 1.0) if kind == "boolean" else (raw.get("min", -math.inf), raw.get("max", math.inf))
    if isinstance(lo, bool) or isinstance(hi, bool) or not isinstance(lo, (int, float)) or not isinstance(hi, (int, float)):
        raise SpecError(model, f"min and max of feature {fname!r} must be numbers")
    if lo > hi:
        raise SpecError(model, f"feature {fname!r} has min > max")
    default = raw.get("default")
    missing, unseen = raw.get("missing", "refuse"), raw.get("unseen", "refuse")
    if missing not in ("refuse", "allowed"):
        raise SpecError(model, f"missing of feature {fname!r} must be 'refuse' or 'allowed', got {missing!r}")
    if missing == "allowed" and default is not None:
        raise SpecError(model, f"feature {fname!r} has a default and missing = 'allowed': a blank is one or the other")
    if unseen not in ("refuse", "other") or (unseen == "other" and kind != "categorical"):
        raise SpecError(model, f"unseen of feature {fname!r} must be 'refuse', or 'other' for a categorical, got {unseen!r}")
    if kind == "tags" and default is not None:
        if not isinstance(default, list) or not set(default) <= set(categories):
            raise SpecError(model, f"default of tags {fname!r} must be a list of its categories")
        default = tuple(default)
    elif default is not None:
        _check_default(model, fname, kind, float(lo), float(hi), categories, default)
    return Feature(
        name=fname,
        kind=kind,
        min=float(lo),
        max=float(hi),
        categories=categories,
        default=default,
        description=str(raw.get("description", "")),
        missing=missing,
        unseen=unseen,
    )
