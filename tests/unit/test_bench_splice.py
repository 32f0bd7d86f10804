"""A section measured on its own replaces its earlier block in the report and leaves the rest."""

from __future__ import annotations

from bench.report import Section, Table, Target, splice, splice_block


def block(measured: str) -> str:
    section = Section("Batching", "intro", tables=[Table(("a",), [(1,)])], targets=[Target("t", "<= 1", measured, True)])
    return splice_block(["batching"], [section], [("Redis server", "7"), ("OS", "x")], "today at commit abc", "scripts/bench --sections batching")


def test_a_spliced_block_is_appended_once_then_replaced_in_place() -> None:
    report = "# benchmarks\n\n## Earlier\n\nkept\n"
    first = splice(report, ["batching"], block("0.5"))
    assert first.startswith(report.rstrip()) and "| t | <= 1 | 0.5 | hit |" in first and "OS: x" not in first
    second = splice(first + "\n## Later\n\nalso kept\n", ["batching"], block("0.7"))
    assert "0.5 |" not in second and "| t | <= 1 | 0.7 | hit |" in second
    assert second.count("<!-- bench:batching -->") == 1 and second.index("0.7") < second.index("## Later")
    assert "kept" in second and "also kept" in second and "re-measured on its own" in second
