"""The benchmark harness end to end in quick mode: its own workers, every section, a report."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.sections import SECTIONS
from tests.integration.workers import worker_env

REPO = Path(__file__).resolve().parents[2]


def test_quick_bench_writes_a_report_with_every_section_and_target(redis_available: None, models_dir: Path, tmp_path: Path) -> None:
    # Given the configured test Redis and a registered model
    env = worker_env(models_dir=str(models_dir), run_dir=str(tmp_path / "run"))
    env["PYTHONPATH"] = str(REPO)
    out = tmp_path / "BENCHMARKS.md"

    # When the quick bench runs
    bench = subprocess.Popen([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    _, stderr = bench.communicate(timeout=240)

    # Then it wrote the report: banner, machine, each section, each target as hit or MISS
    assert bench.returncode == 0, stderr[-3000:]
    report = out.read_text()
    assert report.startswith("# leadscore benchmarks\n\n> **Quick smoke run**")
    for name in SECTIONS:
        title = __import__(f"bench.{name}", fromlist=["TITLE"]).TITLE
        assert f"## {title}" in report
    targets = re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \| (hit|MISS) \|$", report, flags=re.M)
    assert len(targets) == 14, report
    assert "nan" not in report.lower().replace("financ", "")
    assert "| onnxruntime |" in report and "| Redis server |" in report
    # and it left none of its workers behind
    leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert f"-{bench.pid}@" not in leftovers
