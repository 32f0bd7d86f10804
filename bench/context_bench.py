"""Cost of scoring from a conversation, in-process: the featurizer per lead for threads of 10 to
1,000 messages, and ``score_one`` with a 20-message context against the same lead as features.

A bench section (``TITLE``, ``run(ctx)``: add ``"context_bench"`` to ``bench.sections.SECTIONS``),
or on its own, with a small model trained in a scratch directory:

    python -m bench.context_bench [--quick]      # prints the Markdown section
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import Section, Table, Target, now_utc, percentiles_ms
from ml_core.context import MAX_MESSAGES, MAX_TEXT_CHARS, derive_features, version
from ml_core.onnx_model import OnnxScorer
from ml_core.registry import Registry
from ml_core.scoring import Scorer, score_one
from ml_core.spec import ModelSpec
from ml_core.store.state import StateStore, embedded_url
from ml_core.synthetic.lead_conversations import conversations

TITLE = "Scoring from a conversation: featurizer cost"
MODEL = "lead_scorer"
THREADS = (10, 20, 100, 1000)


def run(ctx: Any) -> Section:
    """The section, with the bench's served champion."""
    artifact = ctx.registry.load(MODEL)
    return measure(ctx.spec, OnnxScorer(MODEL, artifact.version, artifact.onnx), quick=ctx.quick, send=ctx.send)


def measure(spec: ModelSpec, scorer: Scorer, quick: bool = False, send: Callable[..., Any] | None = None) -> Section:
    """In-process costs; with ``send`` (a bench context's), also ``score_lead`` round trips."""
    reps = 300 if quick else 2000
    rows: list[tuple[int | str, int, int, float, float]] = []
    per_lead: dict[int, dict[str, float]] = {}
    for n in THREADS:
        context = {"messages": thread(n)}
        calls = max(20, reps // max(1, n // 20))
        per_lead[n] = percentiles_ms(_times(lambda: derive_features(spec, context), calls))
        read = min(n, MAX_MESSAGES)
        rows.append((n, read, calls, per_lead[n]["p50"], per_lead[n]["p95"]))
    # the worst case measured so far: every lead text as long as is read, and one long number
    worst = {"messages": thread(1000, lead_text="1" * MAX_TEXT_CHARS)}
    worst_ms = percentiles_ms(_times(lambda: derive_features(spec, worst), 5 if quick else 20))
    rows.append((f"1,000, lead texts of {MAX_TEXT_CHARS:,} digits", MAX_MESSAGES, 5 if quick else 20, worst_ms["p50"], worst_ms["p95"]))
    lead = {"id": "bench-1", "context": {"messages": thread(20)}}
    features = score_one(spec, scorer, lead)["features"]
    as_features = {"id": "bench-1", **features}
    from_context = percentiles_ms(_times(lambda: score_one(spec, scorer, lead), reps))
    from_features = percentiles_ms(_times(lambda: score_one(spec, scorer, as_features), reps))
    ratio = from_context["p50"] / from_features["p50"]
    scoring_rows = [
        ("score_one, in-process", "as a context", from_context["p50"], from_context["p95"]),
        ("score_one, in-process", "as features", from_features["p50"], from_features["p95"]),
    ]
    targets = [
        Target("featurizer, 20 messages, p50", "<= 0.2 ms", f"{per_lead[20]['p50']:.3f} ms", per_lead[20]["p50"] <= 0.2),
    ]
    notes = [f"In-process, a 20-message context costs {ratio:.2f}x the features' `score_one` (p50): the model itself takes a fraction of a millisecond."]
    if send is not None:
        by_context, by_features = _alternate(send, [lead, as_features], 100 if quick else 1000)
        c, f = percentiles_ms(by_context), percentiles_ms(by_features)
        scoring_rows += [("score_lead round trip", "as a context", c["p50"], c["p95"]), ("score_lead round trip", "as features", f["p50"], f["p95"])]
        targets.append(Target("score_lead, 20-message context vs features, p50", "<= 1.2x", f"{c['p50'] / f['p50']:.2f}x", c["p50"] <= 1.2 * f["p50"]))
    return Section(
        TITLE,
        f"In this process, one thread, {now_utc()}: `derive_features` on synthetic threads (half the "
        f"messages the lead's, ~{_mean_chars():.0f} characters each), then `ml_core.scoring.score_one` "
        f"with {type(scorer).__name__} version {scorer.version}. Featurizer {version(spec)}; only the last "
        f"{MAX_MESSAGES} messages of a thread are read.",
        tables=[
            Table(("messages", "read", "calls", "featurizer p50 ms", "featurizer p95 ms"), rows),
            Table(("20-message lead", "given", "p50 ms", "p95 ms"), scoring_rows),
        ],
        targets=targets,
        notes=notes,
    )


def _alternate(send: Callable[..., Any], leads: list[dict[str, Any]], n: int) -> tuple[list[float], ...]:
    """``score_lead`` round trips, alternating between the leads so drift hits both alike."""
    times: list[list[float]] = [[] for _ in leads]
    for i in range(n + 20):
        for k, lead in enumerate(leads):
            started = time.perf_counter()
            send("leadscore.score_lead", lead).get(timeout=30)
            if i >= 20:
                times[k].append(time.perf_counter() - started)
    return tuple(times)


_LEAD_TEXTS: list[str] = []


def thread(n: int, lead_text: str | None = None) -> list[dict[str, Any]]:
    """``n`` messages, agent and lead in turn, an hour apart, the lead's texts from synthetic leads
    (or ``lead_text``)."""
    if not _LEAD_TEXTS:
        leads, _ = conversations(300, seed=3)
        _LEAD_TEXTS.extend(m["text"] for lead in leads for m in lead["context"]["messages"] if m["from"] == "lead")
    messages = []
    for k in range(n):
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + 3600 * k))
        if k % 2:
            messages.append({"from": "lead", "at": at, "text": lead_text or _LEAD_TEXTS[k % len(_LEAD_TEXTS)]})
        else:
            messages.append({"from": "agent", "at": at, "text": "Here are a few listings that match. Would you like a viewing?"})
    return messages


def _mean_chars() -> float:
    return sum(map(len, _LEAD_TEXTS)) / max(1, len(_LEAD_TEXTS))


def _times(call: Callable[[], object], reps: int) -> list[float]:
    call()  # the first call compiles the phrase file
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        call()
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.context_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args(argv)
    from ml_core.lifecycle import train_and_register  # training only for the stand-alone run

    repo_models = Path(__file__).resolve().parent.parent / "models"
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / MODEL).mkdir()
        (root / MODEL / "spec.toml").write_bytes((repo_models / MODEL / "spec.toml").read_bytes())
        registry = Registry(root, StateStore(embedded_url(root)))
        train_and_register(registry, MODEL, rows=4000, folds=3)
        artifact = registry.load(MODEL)
        section = measure(registry.spec(MODEL), OnnxScorer(MODEL, artifact.version, artifact.onnx), quick=args.quick)
    print(f"## {section.title}\n\n{section.intro}\n")
    for table in section.tables:
        print(table.markdown() + "\n")
    for note in section.notes:
        print(f"- {note}\n")
    print(Table(("target", "goal", "measured", "result"), [(t.name, t.goal, t.measured, "hit" if t.hit else "MISS") for t in section.targets]).markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
