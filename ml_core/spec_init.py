"""``leadscore spec init``: a first spec inferred from a table, for a user to review and train.

Per column (the target and the id aside):

- kind: ``boolean`` for a pandas boolean column, a numeric column holding only 0 and 1, or text
  that only spells booleans (``ml_core.booleans``); ``integer`` for whole numbers; ``numeric``
  for other numbers; ``categorical`` for text with at most ``MAX_CATEGORIES`` distinct values.
  Anything else (free text, identifiers, mixed types, a column blank in every row) cannot be
  typed and is refused by name: drop the column or pass it as ``--id``.
- range (integer, numeric): the observed minimum and maximum widened by ``MARGIN`` (10%) of the
  observed span on each side (of the value itself when the span is 0), never below 0 for a
  column that had no negative value; integers are rounded outwards.
- categories: the observed ones, most frequent first, with ``unseen = "other"``: a later lead
  with a category this table did not have is scored as none of them rather than refused.
- blanks: a column with any blank gets ``missing = "allowed"``.

Each feature's comment says what was inferred from how many values. The target must hold 0 and
1 in every row (what training reads). No ``[fallback]`` is written: rules are derived from the
data at training time (``ml_core.derived_rules``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml_core import booleans
from ml_core.errors import DatasetError, SpecError
from ml_core.spec import parse_spec, spec_path

MARGIN = 0.1
MAX_CATEGORIES = 50
QUALITY_GATE = 0.55


@dataclass(frozen=True)
class Inferred:
    """One feature's TOML lines and the comment that says why."""

    comment: str
    fields: dict[str, Any]


def infer_spec(name: str, frame: pd.DataFrame, target: str, id_column: str | None, source: str) -> str:
    """The spec's TOML text; raises ``DatasetError`` for a non-binary target or an untypeable column."""
    if target not in frame.columns:
        raise DatasetError(name, f"target column {target!r} is not in the table; columns are {list(frame.columns)[:20]}")
    if id_column is not None and id_column not in frame.columns:
        raise DatasetError(name, f"id column {id_column!r} is not in the table")
    positive_rate = _check_target(name, frame[target], target)
    skip = {target, id_column, "id"}
    features = [(str(column), infer_feature(name, str(column), frame[column])) for column in frame.columns if column not in skip]
    if not features:
        raise DatasetError(name, "no feature columns besides the target and the id")
    text = _render(name, target, source, len(frame), positive_rate, features)
    parse_spec(name, _toml_loads(name, text))  # what was written must load
    return text


def write_spec(models_dir: Path, name: str, frame: pd.DataFrame, target: str, id_column: str | None, source: str, force: bool = False) -> Path:
    path = spec_path(models_dir, name)
    if path.exists() and not force:
        raise SpecError(name, f"{path} already exists; pass --force to overwrite it")
    text = infer_spec(name, frame, target, id_column, source)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def infer_feature(model: str, column: str, series: pd.Series) -> Inferred:
    blank = series.isna() | series.map(lambda v: isinstance(v, str) and not v.strip())
    values = series[~blank]
    n_blank = int(blank.sum())
    if values.empty:
        raise DatasetError(model, f"column {column!r} is blank in every row: it cannot be typed; drop it")
    kind, fields, why = _kind(model, column, values)
    blanks = f"{n_blank} blank{'s' if n_blank != 1 else ''} ({n_blank / len(series):.1%}) -> may be missing" if n_blank else "no blanks -> required"
    fields = {"name": column, "kind": kind, **fields, **({"missing": "allowed"} if n_blank else {})}
    return Inferred(f"{kind} from {len(values):,} values: {why}; {blanks}", fields)


def _kind(model: str, column: str, values: pd.Series) -> tuple[str, dict[str, Any], str]:
    if pd.api.types.is_bool_dtype(values):
        return "boolean", {}, "true/false"
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if not np.isfinite(numbers).all():
            raise DatasetError(model, f"column {column!r} holds infinite numbers: it cannot be typed")
        if set(np.unique(numbers)) <= {0.0, 1.0}:
            return "boolean", {}, "only 0 and 1"
        kind = "integer" if (numbers == np.floor(numbers)).all() else "numeric"
        lo, hi, widened = _range(float(numbers.min()), float(numbers.max()), kind == "integer")
        return kind, {"min": lo, "max": hi}, f"observed {_num(numbers.min())} to {_num(numbers.max())}, {widened} -> [{_num(lo)}, {_num(hi)}]"
    if not all(isinstance(v, str) for v in values):
        types = sorted({type(v).__name__ for v in values})
        raise DatasetError(model, f"column {column!r} mixes value types {types}: it cannot be typed")
    words = values.str.strip()
    if words.map(booleans.is_spelling).all():
        return "boolean", {}, f"text spelling booleans ({', '.join(sorted(set(words.str.lower()))[:6])})"
    counts = words.value_counts()
    if len(counts) > MAX_CATEGORIES:
        raise DatasetError(
            model,
            f"column {column!r} has {len(counts)} distinct text values (more than {MAX_CATEGORIES}): free text or an "
            "identifier cannot be typed; drop it, or name it with --id",
        )
    categories = [str(c) for c in counts.index]
    return "categorical", {"categories": categories, "unseen": "other"}, (
        f"{len(categories)} categories, most frequent first; a category not listed is scored as \"other\""
    )


def _range(lo: float, hi: float, integer: bool) -> tuple[float, float, str]:
    span = hi - lo if hi > lo else max(abs(hi), 1.0)
    low, high = lo - MARGIN * span, hi + MARGIN * span
    if lo >= 0:
        low = max(0.0, low)
    if integer:
        return float(math.floor(low)), float(math.ceil(high)), f"widened by {MARGIN:.0%} of the span, rounded out"
    low, high = min(lo, _sig(low)), max(hi, _sig(high))
    return low, high, f"widened by {MARGIN:.0%} of the span"


def _check_target(model: str, series: pd.Series, target: str) -> float:
    y = pd.to_numeric(series, errors="coerce") if not pd.api.types.is_bool_dtype(series) else series.astype(float)
    bad = ~y.isin([0, 1])
    if bad.any():
        seen = sorted({str(v) for v in series[bad].head(1000)})[:5]
        raise DatasetError(
            model,
            f"target {target!r} is not binary: training needs 0 or 1 in every row; {int(bad.sum())} rows are not "
            f"(values such as {seen}); recode the target as 0/1",
        )
    if y.nunique() < 2:
        raise DatasetError(model, f"target {target!r} has a single class; nothing to learn")
    return float(y.mean())


def _render(name: str, target: str, source: str, rows: int, positive_rate: float, features: list[tuple[str, Inferred]]) -> str:
    lines = [
        f"# Written by `leadscore spec init {name}` from {source}: {rows:,} rows, {positive_rate:.1%} positive.",
        "# Review it: kinds, ranges and categories are what the data showed. Ranges are widened by",
        f"# {MARGIN:.0%} of the observed span (never below 0 for a column that had no negative value);",
        '# a column with blanks may be missing (missing = "allowed"); unseen = "other" scores a category',
        '# the table did not have as none of the listed ones (unseen = "refuse" rejects the lead instead).',
        f"description = {_str(f'Probability of {target} (inferred from {source})')}",
        f"target = {_str(target)}",
        'metric = "roc_auc"',
        f"quality_gate = {QUALITY_GATE}  # held-out ROC-AUC a version must reach; raise it once you know what the data gives",
        "",
        "escalation_budget = 0.25  # share of leads sent to the deep tier; training resolves the threshold",
        "",
        "[bands]  # by share of the score distribution, resolved into cut-offs at training",
        "hot_share = 0.10",
        "warm_share = 0.30",
        "",
        "# No [fallback]: when the model cannot serve, rules derived from the training rows (a logistic",
        "# regression stored as plain numbers in the version's card) do. Add [fallback] to write your own.",
    ]
    for _, inferred in features:
        lines += ["", "[[features]]", f"# {inferred.comment}"]
        lines += [f"{key} = {_value(v)}" for key, v in inferred.fields.items()]
    return "\n".join(lines) + "\n"


def _value(v: Any) -> str:
    if isinstance(v, str):
        return _str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return _num(v)


def _str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a TOML basic string


def _num(v: Any) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)


def _sig(v: float) -> float:
    return float(f"{v:.6g}")


def _toml_loads(name: str, text: str) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(name, f"inferred spec is not valid TOML: {exc}") from None
