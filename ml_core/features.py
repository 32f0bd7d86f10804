"""Validation and encoding of leads against a spec, column by column.

Leads arrive as JSON objects (``{"id": ..., <feature>: value}``) or as table rows. Both become
columns, and each check runs once per column over the whole batch (type sets, NumPy masks), so a
batch of 10,000 costs a few column passes, not 10,000 x 10 Python checks. The result is the
float32 matrix the models take (categoricals one-hot, tags multi-hot, in spec order) plus one
error per bad record.

Blanks (an absent key, ``null``, an empty table cell): a feature with ``missing = "allowed"``
encodes one as NaN in every column it owns (a categorical's whole one-hot block), which the
models were trained to read (``ml_core.imputation``); otherwise the feature's ``default`` fills
it, or it is "missing (required)". A categorical with ``unseen = "other"`` encodes a category it
does not list as an all-zero one-hot block instead of refusing it.

The same checks validate any record with a schema: a model's features, and the raw inputs a
featurizer derives features from (a lead's preferences, a property), whose errors name their
entity (``InvalidPropertyError`` with the property id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ml_core import booleans
from ml_core.errors import InvalidLeadError, InvalidPropertyError, InvalidRecordError
from ml_core.identifiers import id_problem
from ml_core.json_values import BOOL_TYPES, NUMBER_TYPES, json_type
from ml_core.spec import Feature, Schema

MISSING: Any = type("Missing", (), {"__repr__": lambda self: "MISSING"})()
_NUMBER_TYPES, _BOOL_TYPES = NUMBER_TYPES, BOOL_TYPES
_MAX_NAME = 64  # field names echoed in errors are cut, so a 1 MB key cannot bloat a result
_ERRORS: dict[str, type[InvalidRecordError]] = {"lead": InvalidLeadError, "property": InvalidPropertyError}


@dataclass(frozen=True)
class LeadError:
    """One invalid record: a lead, or the entity its schema was validated as."""

    index: int
    lead_id: str | None
    problems: list[list[str]]
    entity: str = "lead"

    def to_exception(self) -> InvalidRecordError:
        return _ERRORS[self.entity](self.lead_id, self.problems)

    def to_json(self) -> dict[str, Any]:
        exc = self.to_exception()  # its problems are capped: this row may be stored per lead
        return {
            f"{self.entity}_id": self.lead_id,
            "error": _ERRORS[self.entity].__name__,
            "problems": exc.problems,
            "message": str(exc),
        }


@dataclass(frozen=True)
class Encoded:
    """Valid leads as a matrix, with their ids and positions in the input, and the errors."""

    X: np.ndarray
    ids: list[str]
    index: np.ndarray
    errors: list[LeadError]
    n_input: int


def encode_leads(
    spec: Schema,
    leads: Sequence[Any],
    unknown_fields: Literal["reject", "ignore"] = "reject",
    dtype: type[np.floating[Any]] = np.float32,
    entity: Literal["lead", "property"] = "lead",
) -> Encoded:
    """Validate JSON-shaped records. Never raises for bad data: bad records come back in ``errors``.

    ``dtype`` float64 keeps full precision for the native model (explanations); serving uses float32.
    """
    n = len(leads)
    problems: dict[int, list[list[str]]] = defaultdict(list)
    ids: list[str | None] = [None] * n
    known = set(spec.feature_names) | {"id"}
    empty: dict[str, Any] = {}
    rows: list[Mapping[str, Any]] = []
    not_objects: set[int] = set()
    for i, lead in enumerate(leads):
        if not isinstance(lead, Mapping):
            problems[i].append([entity, f"expected a JSON object, got {_json_type(lead)}"])
            not_objects.add(i)
            rows.append(empty)
            continue
        rows.append(lead)
        ids[i], id_problem = _lead_id(lead.get("id", MISSING))
        if id_problem:
            problems[i].append(["id", id_problem])
        if unknown_fields == "reject" and not known.issuperset(lead.keys()):
            for key in sorted(map(str, set(lead.keys()) - known)):
                problems[i].append([key[:_MAX_NAME], "unknown field"])
    columns = {f.name: [r.get(f.name, MISSING) for r in rows] for f in spec.features}
    # A non-object gets one clear problem, not a "missing" per feature
    return _encode(spec, columns, ids, problems, n, nan_is_missing=False, skip=not_objects, dtype=dtype, entity=entity)


def encode_columns(
    spec: Schema, columns: Mapping[str, np.ndarray], ids: Sequence[str], entity: Literal["lead", "property"] = "lead"
) -> Encoded:
    """Validate features that arrive as NumPy columns (derived by a featurizer), one per spec feature."""
    return _encode(spec, dict(columns), list(ids), defaultdict(list), len(ids), nan_is_missing=False, entity=entity)


def fields(spec: Schema, X: np.ndarray) -> dict[str, np.ndarray]:
    """Views of an encoded matrix by field: a vector per scalar field, an (n, categories) block otherwise."""
    out: dict[str, np.ndarray] = {}
    at = 0
    for feature in spec.features:
        width = len(feature.columns)
        block = X[:, at : at + width]
        out[feature.name] = block if feature.kind in ("categorical", "tags") else block[:, 0]
        at += width
    return out


def encode_frame(spec: Schema, frame: Any, ids: Sequence[str] | None = None) -> Encoded:
    """Validate a pandas DataFrame whose columns are named by the spec.

    Empty cells (NaN in a table) count as missing. Boolean text columns read the spellings of
    ``ml_core.booleans``, as lead files do.
    """
    import pandas as pd  # only tables need it: a web client validating leads never loads pandas

    n = len(frame)
    row_ids: list[str | None] = list(ids) if ids is not None else [str(i) for i in range(n)]
    problems: dict[int, list[list[str]]] = defaultdict(list)
    columns: dict[str, Any] = {}
    for f in spec.features:
        if f.name in frame.columns:
            series = frame[f.name]
            if pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
                # nullable Int64/boolean columns too: pd.NA becomes NaN, i.e. a missing cell
                columns[f.name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                cells = list(series.to_numpy(dtype=object, na_value=None))
                columns[f.name] = _boolean_words(cells) if f.kind == "boolean" else cells
        else:
            columns[f.name] = [MISSING] * n
    return _encode(spec, columns, row_ids, problems, n, nan_is_missing=True)


def _boolean_words(cells: list[Any]) -> list[Any]:
    """Text cells that spell a boolean become one; anything else is left for validation to name."""
    return [
        parsed if isinstance(v, str) and (parsed := booleans.parse(v)) is not None else v
        for v in cells
    ]


def _encode(
    spec: Schema,
    columns: dict[str, Any],
    ids: list[str | None],
    problems: dict[int, list[list[str]]],
    n: int,
    nan_is_missing: bool,
    skip: AbstractSet[int] = frozenset(),
    dtype: type[np.floating[Any]] = np.float32,
    entity: str = "lead",
) -> Encoded:
    X = np.zeros((n, len(spec.columns)), dtype=dtype)
    at = 0
    for feature in spec.features:
        values, bad = _column(feature, columns[feature.name], n, nan_is_missing)
        width = len(feature.columns)
        X[:, at : at + width] = values.reshape(n, width)
        at += width
        for i, problem in bad:
            if i not in skip:
                problems[i].append([feature.name, problem])
    invalid = np.zeros(n, dtype=bool)
    invalid[list(problems)] = True
    index = np.flatnonzero(~invalid)
    errors = [LeadError(i, ids[i], problems[i], entity) for i in sorted(problems)]
    return Encoded(
        X=X[index],
        ids=[ids[i] for i in index],  # type: ignore[misc]  # valid rows always have an id
        index=index,
        errors=errors,
        n_input=n,
    )


def _column(
    feature: Feature, values: Any, n: int, nan_is_missing: bool
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    if feature.kind == "categorical":
        return _categorical(feature, values, n)
    if feature.kind == "tags":
        return _tags(feature, values, n, nan_is_missing)
    arr, bad, blank = _as_float(feature, values, n, nan_is_missing)
    if not bad and _all_valid(feature, arr, blank):
        return arr, bad  # the usual case, in one pass: single leads are scored on the latency path
    blank = np.zeros(n, dtype=bool) if blank is None else blank
    defined = ~np.isnan(arr) | blank
    flagged = np.zeros(n, dtype=bool)
    flagged[[i for i, _ in bad]] = True

    def flag(mask: np.ndarray, problem: Any) -> None:
        for i in np.flatnonzero(mask & ~flagged):
            bad.append((int(i), problem(arr[i]) if callable(problem) else problem))
        flagged[mask] = True

    flag(~defined, "is NaN")
    flag(np.isinf(arr), "is infinite")
    finite = np.isfinite(arr)
    if feature.kind == "boolean":
        flag(finite & (arr != 0) & (arr != 1), lambda v: f"expected a boolean (true/false or 0/1), got {v:g}")
    else:
        if feature.kind == "integer":
            flag(finite & (arr != np.floor(arr)), lambda v: f"expected an integer, got {v:g}")
        out_of_range = finite & ((arr < feature.min) | (arr > feature.max))
        flag(out_of_range, lambda v: f"out of range [{feature.min:g}, {feature.max:g}]: {v:g}")
    bad.sort()
    return np.where(flagged, 0.0, arr), bad


def _all_valid(feature: Feature, arr: np.ndarray, blank: np.ndarray | None) -> bool:
    """Whether no value breaks a check ``_column`` flags: finite, and boolean, integer, in range.
    Allowed blanks (``blank``, NaN in ``arr``) pass."""
    if feature.kind == "boolean":
        ok = (arr == 0) | (arr == 1)
    else:
        ok = (arr >= feature.min) & (arr <= feature.max) & np.isfinite(arr)  # False for NaN and infinities
        if feature.kind == "integer":
            ok &= arr == np.floor(arr)
    if blank is not None:
        ok |= blank
    return bool(ok.all())


def _as_float(
    feature: Feature, values: Any, n: int, nan_is_missing: bool
) -> tuple[np.ndarray, list[tuple[int, str]], np.ndarray | None]:
    """The column as float64, with type problems and missing values resolved or reported, and
    the mask of allowed blanks (left NaN; None when there are none)."""
    if isinstance(values, np.ndarray):
        arr = values.astype(np.float64)
        if nan_is_missing:
            missing = np.isnan(arr)
            if missing.any():
                return _fill_missing(feature, arr, missing)
        return arr, [], None
    types = set(map(type, values))
    wanted = _BOOL_TYPES + _NUMBER_TYPES if feature.kind == "boolean" else _NUMBER_TYPES
    if all(issubclass(t, wanted) and (feature.kind == "boolean" or not issubclass(t, _BOOL_TYPES)) for t in types):
        try:
            return _as_float(feature, np.asarray(values, dtype=np.float64), n, nan_is_missing)
        except OverflowError:
            pass  # an integer beyond float range: the slow path below names it
    arr = np.full(n, np.nan)
    missing = np.zeros(n, dtype=bool)
    bad: list[tuple[int, str]] = []
    blank = None
    for i, v in enumerate(values):
        if v is MISSING or v is None:
            missing[i] = True
        elif isinstance(v, _BOOL_TYPES) and feature.kind != "boolean":
            bad.append((i, "expected a number, got boolean"))
        elif isinstance(v, wanted):
            try:
                arr[i] = float(v)
            except OverflowError:
                bad.append((i, "number too large"))
        else:
            bad.append((i, f"expected {'a boolean' if feature.kind == 'boolean' else 'a number'}, got {_json_type(v)}"))
    if missing.any():
        arr, missing_bad, blank = _fill_missing(feature, arr, missing)
        bad.extend(missing_bad)
    for i, _ in bad:
        arr[i] = 0.0  # already reported: keep it out of the NaN check
    return arr, bad, blank


def _fill_missing(
    feature: Feature, arr: np.ndarray, missing: np.ndarray
) -> tuple[np.ndarray, list[tuple[int, str]], np.ndarray | None]:
    arr = arr.copy()
    if feature.may_be_missing:
        arr[missing] = np.nan
        return arr, [], missing
    if feature.default is not None:
        arr[missing] = float(feature.default)
        return arr, [], None
    arr[missing] = 0.0
    return arr, [(int(i), "missing (required)") for i in np.flatnonzero(missing)], None


_BLANK, _OTHER = -4, -5  # category codes of an allowed blank and of an unseen category scored as "other"


def _categorical(feature: Feature, values: Any, n: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    lookup = {c: k for k, c in enumerate(feature.categories)}
    default = _BLANK if feature.may_be_missing else lookup.get(feature.default, -3) if feature.default is not None else -3
    unseen = _OTHER if feature.unseen == "other" else -1
    codes = np.fromiter(
        (
            lookup.get(v, unseen) if isinstance(v, str)
            else default if (v is MISSING or v is None or (isinstance(v, float) and v != v))
            else -2
            for v in values
        ),
        dtype=np.int64,
        count=n,
    )
    bad: list[tuple[int, str]] = []
    for i in np.flatnonzero((codes < 0) & (codes > _BLANK)):
        v = values[i]
        if codes[i] == -1:
            bad.append((int(i), f"unknown category; expected one of {list(feature.categories)}"))
        elif codes[i] == -3:
            bad.append((int(i), "missing (required)"))
        else:
            bad.append((int(i), f"expected a string category, got {_json_type(v)}"))
    onehot = np.zeros((n, len(feature.categories)))
    ok = codes >= 0
    onehot[np.flatnonzero(ok), codes[ok]] = 1.0
    onehot[codes == _BLANK] = np.nan
    return onehot, bad


def _tags(feature: Feature, values: Any, n: int, from_table: bool) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """A JSON array of distinct categories, multi-hot. A table cell may also be ``"a|b"`` (CSV has no arrays).

    Rows are gathered in one Python pass and every item is looked up in one flat pass, so the
    cost is per item, not per item times categories.
    """
    lookup = {c: k for k, c in enumerate(feature.categories)}
    bad: list[tuple[int, str]] = []
    rows: list[int] = []
    lists: list[Any] = []
    blanks: list[int] = []
    for i, v in enumerate(values):
        if v is MISSING or v is None or (isinstance(v, float) and v != v):
            if feature.may_be_missing:
                blanks.append(i)
                continue
            if feature.required:
                bad.append((i, "missing (required)"))
                continue
            v = feature.default
        elif from_table and isinstance(v, str):
            v = v.split("|") if v else []
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        if isinstance(v, (list, tuple)):
            rows.append(i)
            lists.append(v)
        else:
            bad.append((i, f"expected an array of strings, got {_json_type(v)}"))
    items = [t for v in lists for t in v]
    codes = np.fromiter((lookup.get(t, -1) if type(t) is str else -2 for t in items), dtype=np.int64, count=len(items))
    lengths = [len(v) for v in lists]
    row_of = np.repeat(np.asarray(rows, dtype=np.int64), lengths)
    multihot = np.zeros((n, len(feature.categories)))
    wrong = codes < 0
    first: dict[int, str] = {}
    if wrong.any():
        starts = np.repeat(np.cumsum([0, *lengths])[:-1], lengths)
        for at in np.flatnonzero(wrong):
            problem = "is not a string" if codes[at] == -2 else f"unknown tag; expected tags from {list(feature.categories)}"
            first.setdefault(int(row_of[at]), f"item {int(at - starts[at])} {problem}")
    np.add.at(multihot, (row_of[~wrong], codes[~wrong]), 1.0)
    for repeated in np.flatnonzero((multihot > 1).any(axis=1)):
        first.setdefault(int(repeated), "repeats a tag")
    bad.extend(first.items())
    bad.sort()
    flagged = np.zeros(n, dtype=bool)
    flagged[[i for i, _ in bad]] = True
    multihot[flagged] = 0.0
    multihot[blanks] = np.nan
    return multihot, bad


def _lead_id(value: Any) -> tuple[str | None, str]:
    if value is MISSING or value is None:
        return None, "missing (required)"
    problem = id_problem(value)
    if problem == "expected a string or integer id":
        problem = f"expected a string or integer id, got {_json_type(value)}"
    return (None, problem) if problem else (str(value), "")


def _json_type(value: Any) -> str:
    return "null" if value is MISSING else json_type(value)
