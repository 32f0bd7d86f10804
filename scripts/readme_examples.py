"""Run the README's examples and check (or rewrite) the outputs shown under them.

    .venv/bin/python scripts/readme_examples.py           # check: exit 1 when an output drifted
    .venv/bin/python scripts/readme_examples.py --write   # rewrite the outputs from a fresh run

An example is a ```python block followed by a ```text block holding what it prints. Each runs in a
fresh interpreter, in the repository, against the running stack (`scripts/run`), in README order.
Figures that differ on every run (latencies, timestamps) are shown as `...` and compared as such;
other numbers to 12 significant digits (a sum's last bit may differ between runs and machines).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE = re.compile(r"```python\n((?:(?!```).)*)```\n+```text\n((?:(?!```).)*)```", re.S)
FLOAT = re.compile(r"-?\d+\.\d{6,}(?:e-?\d+)?")
VOLATILE = re.compile(r"""(["'](?:latency_ms|recorded_at|scored_at|occurred_at)["']: )("[^"]*"|[0-9.]+)""")


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=README.parent)
    if done.returncode != 0:
        raise SystemExit(f"README example failed:\n{code}\n{done.stderr[-2000:]}")
    return VOLATILE.sub(r"\1...", done.stdout)


def _digits(text: str) -> str:
    return FLOAT.sub(lambda m: format(float(m.group(0)), ".12g"), text)


def main(write: bool) -> int:
    text = README.read_text()
    drifted = 0
    new_text = text
    for example in EXAMPLE.finditer(text):
        code, shown = example.group(1), example.group(2)
        actual = run(code)
        if _digits(actual) != _digits(shown):
            drifted += 1
            print(f"README example drifted:\n{code}--- shown:\n{shown}--- printed now:\n{actual}", file=sys.stderr)
            new_text = new_text.replace(example.group(0), f"```python\n{code}```\n\n```text\n{actual}```", 1)
    if write and drifted:
        README.write_text(new_text)
        print(f"rewrote {drifted} example output(s) in README.md", file=sys.stderr)
        return 0
    print(f"README examples: {len(EXAMPLE.findall(text))} run, {drifted} drifted", file=sys.stderr)
    return 1 if drifted else 0


if __name__ == "__main__":
    sys.exit(main("--write" in sys.argv[1:]))
