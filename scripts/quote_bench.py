"""Copy BENCHMARKS.md's conversation-cost figures into the README (its "Cost." paragraph), as printed.

    .venv/bin/python scripts/quote_bench.py   # after scripts/bench; tests/unit/test_readme_figures.py checks they agree
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Scoring from a conversation: featurizer cost"
TARGETS = ("| featurizer, 20 messages, p50 |", "| score_lead, 20-message context vs features, p50 |")
TABLE = re.compile(r"(?:^\|.*\|\n)+", re.M)
RUN = re.compile(r"Written by `scripts/bench` on (.*?) at commit (\w+)")
README_START = "(its own scoring worker, a model trained on 20,000 synthetic rows) on "
README_END = "Through the broker, where a lead is actually scored"


def quoted(benchmarks: str) -> str:
    """The README's block for this report: the run's date and commit, the section's two tables, its targets."""
    section = benchmarks[benchmarks.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    tables = TABLE.findall(section)
    targets = [line for line in benchmarks.splitlines() if line.startswith(TARGETS)]
    found = RUN.search(benchmarks)
    if len(tables) != 2 or len(targets) != 2 or found is None:
        raise SystemExit("BENCHMARKS.md has no full run's conversation-cost section: run scripts/bench first")
    when, commit = found.groups()
    return (
        f"{README_START}{when} at commit {commit},\n"
        "with the phrase file named in its section, copied as printed (`scripts/quote_bench.py`):\n\n"
        f"{tables[0]}\n{tables[1]}\n| target | goal | measured | result |\n|---|---|---|---|\n" + "\n".join(targets) + "\n\n"
    )


def main() -> int:
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(README_START), readme.index(README_END)
    (ROOT / "README.md").write_text(readme[:start] + quoted((ROOT / "BENCHMARKS.md").read_text()) + readme[end:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
