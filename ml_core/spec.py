"""Declarative model specs: ``models/<name>/spec.toml`` parsed into frozen dataclasses."""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ml_core.errors import ModelNotFoundError, SpecError
from ml_core.ranking import METRICS

Kind = Literal["numeric", "integer", "boolean", "categorical", "tags"]
_KINDS = ("numeric", "integer", "boolean", "categorical", "tags")
_VOCABULARY_KINDS = ("categorical", "tags")  # kinds whose values come from ``categories``


@dataclass(frozen=True)
class Feature:
    name: str
    kind: Kind
    min: float = -math.inf
    max: float = math.inf
    categories: tuple[str, ...] = ()
    default: Any = None
    description: str = ""

    @property
    def required(self) -> bool:
        return self.default is None

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
    """Lower cut-offs on the 0-100 score: ``score >= hot`` is hot, ``>= warm`` warm, else cold."""

    hot: float
    warm: float

    def label(self, score: float) -> str:
        return "hot" if score >= self.hot else "warm" if score >= self.warm else "cold"


@dataclass(frozen=True)
class Fallback:
    """Rule-based model: ``p = sigmoid(intercept + sum(weight * value))``.

    A numeric feature's weight multiplies its value; a categorical feature's weights are a
    table by category (absent categories weigh 0).
    """

    intercept: float
    weights: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec(Schema):
    """A model: its features (the schema), target, metric and gate, bands and rule-based fallback."""

    description: str
    target: str
    metric: str
    quality_gate: float
    bands: Bands
    fallback: Fallback
    confidence_threshold: float | None
    sha256: str
    featurizer: str | None = None
    """``ml_core.featurizers.<name>`` derives the features from raw inputs; None: the request is the features."""


def spec_path(models_dir: Path, name: str) -> Path:
    return Path(models_dir) / name / "spec.toml"


def available_models(models_dir: Path) -> list[str]:
    return sorted(p.parent.name for p in Path(models_dir).glob("*/spec.toml"))


def load_spec(models_dir: Path, name: str) -> ModelSpec:
    path = spec_path(models_dir, name)
    if not path.is_file():
        raise ModelNotFoundError(name, problem=f"no spec at {path}")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(name, f"not valid TOML: {exc}") from None
    return parse_spec(name, data, hashlib.sha256(raw).hexdigest())


def parse_spec(name: str, data: dict[str, Any], sha256: str = "") -> ModelSpec:
    """A spec from its parsed TOML. Anything malformed raises ``SpecError`` naming the problem."""
    try:
        return _parse_spec(name, data, sha256)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise SpecError(name, f"malformed value ({exc.__class__.__name__}: {exc})") from None


def _parse_spec(name: str, data: dict[str, Any], sha256: str) -> ModelSpec:
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
    bands = need("bands")
    hot, warm = float(need("hot", bands)), float(need("warm", bands))
    if not 0 <= warm <= hot <= 100:
        raise SpecError(name, f"bands need 0 <= warm <= hot <= 100, got warm={warm} hot={hot}")
    fb = need("fallback")
    weights = dict(fb.get("weights", {}))
    unknown = set(weights) - set(names)
    if unknown:
        raise SpecError(name, f"fallback weights name unknown features {sorted(unknown)}")
    threshold = data.get("confidence_threshold")
    return ModelSpec(
        name=name,
        description=str(data.get("description", "")),
        target=need("target"),
        features=features,
        metric=_metric_name(name, data.get("metric", "roc_auc")),
        quality_gate=float(need("quality_gate")),
        bands=Bands(hot=hot, warm=warm),
        fallback=Fallback(intercept=float(fb.get("intercept", 0.0)), weights=weights),
        confidence_threshold=None if threshold is None else float(threshold),
        sha256=sha256,
        featurizer=_featurizer_name(name, data.get("featurizer")),
    )


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
    )
