"""What a bench section returns, and the Markdown report built from all of them."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np

LIBRARIES = ("celery", "kombu", "redis", "onnxruntime", "scikit-learn", "numpy", "pandas", "pyarrow")


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: what it asks, what this run measured, and whether it held."""

    name: str
    goal: str
    measured: str
    hit: bool


@dataclass(frozen=True)
class Section:
    title: str
    intro: str
    tables: list[Table] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99))}


def machine() -> list[tuple[str, str]]:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines() if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0)
    rows = [
        ("CPU", f"{cpu}, {os.cpu_count()} cores visible"),
        ("memory", f"{mem_kb / 1024 / 1024:.1f} GiB"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
    ]
    rows += [(name, _version(name)) for name in LIBRARIES]
    return rows


def render(sections: list[Section], *, header: list[str], setup: list[tuple[str, str]]) -> str:
    out = ["# leadscore benchmarks", "", *header, "", "## Machine and setup", "", Table(("what", "value"), list(setup)).markdown(), ""]
    targets = [t for s in sections for t in s.targets]
    if targets:
        rows = [(t.name, t.goal, t.measured, "hit" if t.hit else "MISS") for t in targets]
        out += ["## Targets", "", Table(("target", "goal", "measured", "result"), rows).markdown(), ""]
    for section in sections:
        out += [f"## {section.title}", "", section.intro, ""]
        for table in section.tables:
            out += [table.markdown(), ""]
        out += [f"- {note}" for note in section.notes]
        out += [""] if section.notes else []
    return "\n".join(out).rstrip() + "\n"


def splice_block(names: list[str], sections: list[Section], setup: list[tuple[str, str]], when: str, command: str) -> str:
    """Sections measured on their own, as a block for an existing report: their targets, the setup
    that matters for them, and a banner saying they are not comparable with the rest."""
    rendered = render(sections, header=[], setup=[]).split("\n## Targets\n\n", 1)[-1]  # the targets table, then the sections
    wanted = {"Redis server", "model", "scoring worker", "CPU"}
    run = "; ".join(f"{k}: {v}" for k, v in setup if k in wanted)
    return "\n".join([
        f"## {sections[0].title}: targets (`{command}`)" if len(sections) == 1 else f"## Targets of {', '.join(names)} (`{command}`)",
        "",
        f"> Section re-measured on its own by its bench on {when}, after the rest of this file; its figures are "
        "comparable with each other, not with other sections'.",
        "",
        f"Run setup: {run}.",
        "",
        rendered.rstrip(),
    ])


def splice(report: str, names: list[str], block: str) -> str:
    """``report`` with ``block`` between the markers of these sections (replacing an earlier run's), or appended."""
    start, end = f"<!-- bench:{','.join(names)} -->", f"<!-- /bench:{','.join(names)} -->"
    marked = f"{start}\n{block}\n{end}\n"
    if start in report and end in report:
        before, rest = report.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        return before + marked + ("\n" + after if after else "")
    return report.rstrip() + "\n\n" + marked


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def redis_version(client: Any) -> str:
    return str(client.info("server").get("redis_version", "?"))


def git_revision() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""
