"""Card numbers as text for the command line: the gate's estimate and the candidate table."""

from __future__ import annotations

from typing import Any


def estimate_text(m: dict[str, Any]) -> str:
    """The gate's figure: '<where> <metric> value +- fold std' (cards from before OOF: held-out)."""
    if "estimate" not in m:
        return f"held-out {m['metric']} {m['holdout']:.4f}"
    return f"{m['evaluated_on'].replace('_', '-')} {m['metric']} {m['estimate']:.4f} +- {m['estimate_std']:.4f}"


def candidate_table(card: dict[str, Any]) -> list[str]:
    """Each candidate's out-of-fold metric (mean +- std over folds), the chosen one and why."""
    selection = card.get("selection")
    if not selection:
        return []
    metric = card["metrics"]["metric"]
    lines = [f"{'candidate':<20} {metric + ' over folds':>24} {'pooled OOF':>11}"]
    for family, cv in card["cross_validation"].items():
        mark = "  <- chosen" if family == card["family"] else ""
        lines.append(f"{family:<20} {cv['mean']:>15.4f} +- {cv['std']:.4f} {cv['oof']:>11.4f}{mark}")
    lines.append(f"{card['family']} {selection['reason']}")
    lines.append(f"protocol: {selection['protocol']}; tuning: {selection['tuning']}")
    return lines
