"""Phrase lists (data files, format in ``phrases/en.toml``) compiled into one matcher.

A text is cut into words once; phrases are looked up word by word (a dict keyed by first word),
so the cost grows with the words of a thread, not with words times phrases. The few regular
expressions (amounts, addresses) run over the text. A match is then read in its clause: a
negation word among the few words before it (or a negating phrase right after it) makes it
*negated*, a hedge word *hedged*; each signal says what those are worth, so "no rush" lowers
urgency while "no kids" still tells the household size.
"""

from __future__ import annotations

import bisect
import hashlib
import os
import re
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml_core.errors import SpecError

_SHIPPED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "phrases")
BOOLEAN_SIGNALS = ("price", "financing", "household", "ownership")
GRADED_SIGNALS = ("timeline_urgency", "location", "job")
_TOKENS = re.compile(r"[^\W_]+|[.!?;,\n]")
_CLAUSE_ENDS = frozenset(".!?;,\n") | {"but"}
_AFTER_WORDS = 4

Matches = dict[str, list[tuple[int, float]]]
"""Per signal, ``(word position, value)`` of each match after negation and hedges."""


@dataclass(frozen=True)
class Signal:
    """One text signal: the value of each level (a boolean signal has one level, worth 1) and what
    a negated or hedged match is worth (``negated`` None: a negated match is no match)."""

    name: str
    values: tuple[float, ...]
    default: float
    negated: float | None
    hedged: float
    boolean: bool = False


@dataclass(frozen=True)
class Phrases:
    name: str
    sha256: str
    signals: dict[str, Signal]
    window: int
    first_words: dict[str, list[tuple[tuple[str, ...], str, int]]]
    """First word of a phrase -> (its words, signal, level)."""
    patterns: list[tuple[re.Pattern[str], str, int]]
    negators: frozenset[str]
    negator_phrases: tuple[str, ...]
    negation_after: tuple[str, ...]
    after_first: frozenset[str]
    """First words of ``negation_after``: the cheap test before the phrases are compared."""
    hedges: frozenset[str]
    hedge_phrases: tuple[str, ...]
    employment: dict[str, float]
    years_bonus: float
    years_full: float

    def scan(self, text: str) -> Matches:
        """Every signal's matches in ``text`` (``ml_core.context.parse.normalize``d)."""
        words = _TOKENS.findall(text)
        found: Matches = {name: [] for name in self.signals}
        first = self.first_words
        for i in [i for i, word in enumerate(words) if word in first]:
            for phrase, signal, level in first[words[i]]:
                end = i + len(phrase)
                if end == i + 1 or tuple(words[i:end]) == phrase:
                    self._add(found, words, i, end, signal, level)
        offsets: list[int] | None = None  # where each word starts, found only once a pattern matches
        for pattern, signal, level in self.patterns:
            for m in pattern.finditer(text):
                if offsets is None:
                    offsets = [w.start() for w in _TOKENS.finditer(text)]
                start = bisect.bisect_left(offsets, m.start())
                self._add(found, words, start, max(start + 1, bisect.bisect_left(offsets, m.end())), signal, level)
        return found

    def _add(self, found: Matches, words: list[str], start: int, end: int, name: str, level: int) -> None:
        signal = self.signals[name]
        if signal.boolean and found[name]:
            return  # a boolean signal is decided by its first match that counts
        mood = self.mood(words, start, end)
        value = signal.values[level]
        if mood == "negated":
            if signal.negated is None:
                return
            value = signal.negated
        elif mood == "hedged":
            value *= signal.hedged
        found[name].append((start, value))

    def mood(self, words: list[str], start: int, end: int) -> str:
        """``negated``, ``hedged`` or ``plain``: what the words around ``words[start:end]`` in its clause say."""
        before = words[max(0, start - self.window) : start]
        for k in range(len(before) - 1, -1, -1):
            if before[k] in _CLAUSE_ENDS:
                before = before[k + 1 :]
                break
        preceding = " " + " ".join(before) + " " if before else ""
        if before and (not self.negators.isdisjoint(before) or any(p in preceding for p in self.negator_phrases)):
            return "negated"
        if end < len(words) and words[end] in self.after_first:
            after = words[end : end + _AFTER_WORDS]
            following = " " + " ".join(after) + " "
            if any(following.startswith(p) for p in self.negation_after):
                return "negated"
        if before and (not self.hedges.isdisjoint(before) or any(p in preceding for p in self.hedge_phrases)):
            return "hedged"
        return "plain"


_cache: dict[str, tuple[tuple[int, int], Phrases]] = {}


def resolve(spec_dir: str | None, name: str) -> str:
    """The phrase file ``name``: beside the spec when a team put one there, else the shipped one."""
    if spec_dir is not None:
        beside = os.path.join(spec_dir, name)
        if os.path.isfile(beside):
            return beside
    return os.path.join(_SHIPPED, name)


def load(path: str, model: str) -> Phrases:
    """The compiled phrase file; re-read only when it changes on disk (one ``stat`` per call)."""
    try:
        st = os.stat(path)
    except OSError:
        raise SpecError(model, f"phrase file {os.path.basename(path)!r} is neither beside the spec nor shipped with ml_core.context") from None
    key = (st.st_mtime_ns, st.st_size)
    cached = _cache.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    raw = Path(path).read_bytes()
    name = os.path.basename(path)
    try:
        phrases = _compile(name, hashlib.sha256(raw).hexdigest(), tomllib.loads(raw.decode("utf-8")))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, re.error, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise SpecError(model, f"phrase file {name!r}: {exc.__class__.__name__}: {exc}") from None
    _cache[path] = (key, phrases)
    return phrases


def _compile(name: str, sha256: str, data: dict[str, Any]) -> Phrases:
    raw_signals = data["signals"]
    signals: dict[str, Signal] = {}
    first_words: dict[str, list[tuple[tuple[str, ...], str, int]]] = defaultdict(list)
    patterns: list[tuple[re.Pattern[str], str, int]] = []
    for sname in BOOLEAN_SIGNALS + GRADED_SIGNALS:
        raw = raw_signals[sname]
        graded = sname in GRADED_SIGNALS
        levels = raw["levels"] if graded else [raw]
        for k, level in enumerate(levels):
            if not level.get("phrases") and not level.get("patterns"):
                raise ValueError(f"signal {sname!r} has a level with no phrases or patterns")
            for phrase in level.get("phrases", []):
                for variant in _variants(str(phrase)):
                    first_words[variant[0]].append((variant, sname, k))
            patterns += [(re.compile(str(p)), sname, k) for p in level.get("patterns", [])]
        if graded:
            signals[sname] = Signal(sname, tuple(float(v["value"]) for v in levels), float(raw["default"]), float(raw["negated"]), float(raw["hedged"]))
        else:
            signals[sname] = Signal(sname, (1.0,), 0.0, None if raw.get("negatable", True) else 1.0, 1.0, boolean=True)
    negation, hedge, employment = data["negation"], data["hedge"], data["employment"]
    before = [_normalized(w) for w in negation["before"]]
    hedges = [_normalized(w) for w in hedge["words"]]
    after = [_normalized(p) for p in negation.get("after", [])]
    return Phrases(
        name=name,
        sha256=sha256,
        signals=signals,
        window=int(negation["window"]),
        first_words=dict(first_words),
        patterns=patterns,
        negators=frozenset(w for w in before if " " not in w),
        negator_phrases=tuple(f" {w} " for w in before if " " in w),
        negation_after=tuple(f" {p} " for p in after),
        after_first=frozenset(p.split()[0] for p in after),
        hedges=frozenset(w for w in hedges if " " not in w),
        hedge_phrases=tuple(f" {w} " for w in hedges if " " in w),
        employment={str(k): float(v) for k, v in employment["status"].items()},
        years_bonus=float(employment["years_bonus"]),
        years_full=float(employment["years_full"]),
    )


def _normalized(text: str) -> str:
    return " ".join(_TOKENS.findall(str(text).lower().replace("'", "").replace("\u2019", "")))


def _variants(phrase: str) -> set[tuple[str, ...]]:
    """A phrase's word sequences: a hyphenated word as its parts and as one word."""
    text = phrase.lower().replace("'", "").replace("\u2019", "")
    split = tuple(_TOKENS.findall(text))
    joined = tuple(_TOKENS.findall(text.replace("-", "")))
    if not split:
        raise ValueError(f"phrase {phrase!r} has no words")
    return {split, joined}
