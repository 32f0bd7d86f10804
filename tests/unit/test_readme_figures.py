"""The README quotes BENCHMARKS.md's conversation-cost figures as the bench printed them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_readme_quotes_the_benchmarks_it_names() -> None:
    spec = importlib.util.spec_from_file_location("quote_bench", ROOT / "scripts" / "quote_bench.py")
    assert spec is not None and spec.loader is not None
    quote_bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(quote_bench)
    readme = (ROOT / "README.md").read_text()
    assert quote_bench.quoted((ROOT / "BENCHMARKS.md").read_text()) in readme, "run scripts/quote_bench.py after scripts/bench"
