"""A short report beside each registered version: plots people can look at, and the headline numbers.

    report.md                 what the version is, its gates, and the comparison with the champion it challenged
    report.json               the same numbers, for tools
    report_roc.png            ROC curve on the evaluation rows (the champion's too, when there was one)
    report_calibration.png    predicted probability against observed rate, ten bins
    report_scores.png         score distribution by outcome, with the hot/warm/cold cut-offs
    report_importance.png     permutation importance (AUC lost when a column is shuffled)
    report_escalation.png     out of fold: escalation budget against the guarantee it buys, and the
                              fast path's accuracy on the leads it keeps

The evaluation rows are the out-of-fold predictions of every fitted row (``evaluated_on:
out_of_fold``), or the held-out rows when training kept some; permutation importance reads the
registered model on those rows (on fitted rows it shows what the model relies on, not what
generalizes).

Rendered headless (matplotlib's Agg backend) into bytes, so they are written into the staging
directory with the rest of the version and checksummed in its card.
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_curve

from ml_core import escalation
from ml_core.spec import ModelSpec

FILES = ("report.md", "report.json", "report_roc.png", "report_calibration.png", "report_scores.png", "report_importance.png",
         "report_escalation.png")
_IMPORTANCE_ROWS = 2000


def render(
    spec: ModelSpec,
    model: Any,
    X_test: np.ndarray,
    y_test: np.ndarray,
    proba: np.ndarray,
    headline: dict[str, Any],
    champion_proba: np.ndarray | None = None,
    seed: int = 42,
    *,
    out_of_fold: tuple[np.ndarray, np.ndarray, dict[str, Any]],
) -> dict[str, bytes]:
    """Every report file, as bytes. ``headline`` holds the numbers (metrics, gates, comparison);
    ``out_of_fold`` the training rows' out-of-fold labels and scores and the card's ``decision``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    which = f"{spec.name} {headline.get('version', '(unregistered)')}"  # every plot names what it shows
    importance = _importance(spec, model, X_test, y_test, seed)
    oof_y, oof_p, decision = out_of_fold
    curve = escalation.curve(oof_y, oof_p)
    rows = str(headline.get("evaluated_on", "held_out")).replace("_", "-")
    files = {
        "report_roc.png": _roc(plt, y_test, proba, champion_proba, headline, rows, which),
        "report_calibration.png": _calibration(plt, y_test, proba, which),
        "report_scores.png": _scores(plt, spec, y_test, proba, decision["bands"], rows, which),
        "report_importance.png": _importance_plot(plt, importance, which),
        "report_escalation.png": _escalation_plot(plt, curve, decision["escalation"], which),
    }
    numbers = {**headline, "top_features": importance[:10], "decision": decision, "escalation_curve": curve}
    files["report.json"] = json.dumps(numbers, indent=2).encode()
    files["report.md"] = _markdown(spec, numbers).encode()
    return files


def _png(plt: Any, fig: Any, which: str) -> bytes:
    fig.suptitle(which, fontsize=8, x=0.01, ha="left")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _roc(plt: Any, y: np.ndarray, p: np.ndarray, champion: np.ndarray | None, headline: dict[str, Any], rows: str, which: str) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    fpr, tpr, _ = roc_curve(y, p)
    ax.plot(fpr, tpr, label=f"{headline.get('version', 'this version')} (AUC {headline.get('roc_auc', float('nan')):.3f})")
    if champion is not None:
        cfpr, ctpr, _ = roc_curve(y, champion)
        ax.plot(cfpr, ctpr, linestyle="--", label=f"champion {headline.get('champion', '')}")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC, {rows} rows")
    ax.legend(loc="lower right", fontsize=8)
    return _png(plt, fig, which)


def _calibration(plt: Any, y: np.ndarray, p: np.ndarray, which: str) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o")
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8)
    ax.set(xlabel="predicted probability", ylabel="observed rate", title="Calibration (deciles)")
    return _png(plt, fig, which)


def _scores(plt: Any, spec: ModelSpec, y: np.ndarray, p: np.ndarray, bands: dict[str, Any], rows: str, which: str) -> bytes:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bins = np.linspace(0, 100, 41)
    ax.hist(p[y == 0] * 100, bins=bins, alpha=0.6, label=f"{spec.target} = 0")
    ax.hist(p[y == 1] * 100, bins=bins, alpha=0.6, label=f"{spec.target} = 1")
    for cut, name in ((bands["warm"], "warm"), (bands["hot"], "hot")):
        ax.axvline(cut, color="black", linestyle=":")
        ax.text(cut + 1, ax.get_ylim()[1] * 0.9, name, fontsize=8)
    ax.set(xlabel="score", ylabel=f"{rows} leads", title="Score distribution across the label bands")
    ax.legend(fontsize=8)
    return _png(plt, fig, which)


def _escalation_plot(plt: Any, curve: list[dict[str, Any]], chosen: dict[str, Any], which: str) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([c["alpha"] for c in curve], [c["budget"] for c in curve], marker=".", label="share escalated")
    kept = [c for c in curve if c["fast_path_accuracy"] is not None]
    ax.plot([c["alpha"] for c in kept], [c["fast_path_accuracy"] for c in kept], linestyle="--", label="fast-path accuracy")
    ax.scatter([chosen["alpha"]], [chosen["budget"]], color="black", zorder=3, label=f"served ({chosen['rule']})")
    ax.set(xlabel="guarantee alpha (share of leads the fast path may get wrong)", ylabel="share of leads",
           title="Escalation against the guarantee, out of fold")
    ax.legend(fontsize=8)
    return _png(plt, fig, which)


def _importance(spec: ModelSpec, model: Any, X: np.ndarray, y: np.ndarray, seed: int) -> list[dict[str, Any]]:
    rows = slice(0, min(len(y), _IMPORTANCE_ROWS))
    result = permutation_importance(model, X[rows], y[rows], scoring="roc_auc", n_repeats=3, random_state=seed)
    order = np.argsort(-result.importances_mean)
    return [{"column": spec.columns[j], "auc_drop": round(float(result.importances_mean[j]), 5)} for j in order]


def _importance_plot(plt: Any, importance: list[dict[str, Any]], which: str) -> bytes:
    top = importance[:10][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(top) + 1))
    ax.barh([t["column"] for t in top], [t["auc_drop"] for t in top])
    ax.set(xlabel="AUC lost when shuffled", title="Top feature importances")
    return _png(plt, fig, which)


def _markdown(spec: ModelSpec, n: dict[str, Any]) -> str:
    lines = [f"# {spec.name} {n.get('version', '')}", "", f"- family: {n.get('family')}", f"- training data: {n.get('data')}"]
    where = str(n.get("evaluated_on", "held_out")).replace("_", "-")
    if "estimate" in n:
        lines.append(f"- {where} {spec.metric}: {n['estimate']} (+- {n.get('estimate_std')} over folds)")
    for key in ("roc_auc", "average_precision", "top10_capture", "top20_capture", "top20_lift", "log_loss", "brier"):
        if key in n:
            lines.append(f"- {where} {key}: {n[key]}")
    if n.get("selection"):
        sel = n["selection"]
        lines += [f"- protocol: {sel['protocol']}", f"- selection: {sel['rule']}; {sel['chosen']} {sel['reason']}"]
    for gate in n.get("gates", []):
        lines.append(f"- gate {gate['name']}: {'pass' if gate['passed'] else 'FAIL'} ({gate['detail']})")
    if n.get("comparison"):
        c = n["comparison"]
        lines += ["", f"## Against champion {c['champion']}", "",
                  f"Same {c['rows']} rows, fitted by neither model: {spec.metric} {c['candidate']:.4f} against {c['champion_metric']:.4f} "
                  f"(change {c['change']:+.4f}, tolerance {c['tolerance']})."]
    if n.get("optimization"):
        lines += ["", "## Served artifact", "", f"{n['optimization'].get('kind')}: {n['optimization'].get('reason')}"]
    if n.get("decision"):
        lines += _decision_markdown(n["decision"])
    lines += ["", "## Top features (AUC lost when shuffled)", ""]
    lines += [f"- {t['column']}: {t['auc_drop']}" for t in n.get("top_features", [])]
    lines += ["", "Plots: report_roc.png, report_calibration.png, report_scores.png, report_importance.png, report_escalation.png", ""]
    return "\n".join(lines)


def _decision_markdown(d: dict[str, Any]) -> list[str]:
    e, b, check = d["escalation"], d["bands"], d["out_of_fold_check"]
    accuracy = "n/a" if e["fast_path_accuracy"] is None else f"{e['fast_path_accuracy']:.1%}"
    lines = [
        "", f"## Escalation and bands ({d['source']})", "",
        f"- rule: {e['rule']} {e['requested']:g}; served threshold on confidence max(p, 1 - p): {e['threshold']:.4f}",
        f"- escalated: {e['budget']:.1%} of leads; guarantee: at most {e['alpha']:.1%} of all leads handled by the fast path and wrong",
        f"- fast-path accuracy on the leads it keeps: {accuracy} (the guarantee implies at least {e['fast_path_accuracy_bound']:.1%})",
        f"- positives the fast path calls negative: {'n/a' if e['positives_missed'] is None else format(e['positives_missed'], '.1%')}",
        (f"- resolved on {check['folds'] - 1} of {check['folds']} parts, applied to the one left out: {check['escalated']:.1%} escalated, "
         f"{check['fast_path_wrong']:.1%} of leads fast-path wrong"),
        "", f"Bands by {b['by'].replace('_', '-')}: hot >= {b['hot']}, warm >= {b['warm']}", "",
        "| band | share | conversion | lift |", "|---|---|---|---|",
    ]
    for label, row in b["conversion"].items():
        conversion = "n/a" if row["conversion"] is None else f"{row['conversion']:.1%}"
        lift = "n/a" if row["lift"] is None else f"{row['lift']:.2f}x"
        lines.append(f"| {label} | {row['share']:.1%} | {conversion} | {lift} |")
    return lines
