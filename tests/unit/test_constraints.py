"""constraints.txt (what CI and the Dockerfile install) pins every declared dependency within its range."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_declared_dependency_is_pinned_inside_its_declared_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = [Requirement(line) for line in [*project["dependencies"], *extras["test"]]]
    # the test extra pulls in other extras of the project itself ("leadscore[fleet]"): their requirements count
    declared = [r for r in declared if canonical(r.name) != "leadscore"] + [
        Requirement(line) for r in declared if canonical(r.name) == "leadscore" for extra in r.extras for line in extras[extra]
    ]
    pins = dict(
        (canonical(name), Version(version))
        for name, version in (line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#"))
    )
    missing = [str(req) for req in declared if canonical(req.name) not in pins]
    outside = [f"{req} (pinned {pins[canonical(req.name)]})" for req in declared
               if canonical(req.name) in pins and pins[canonical(req.name)] not in req.specifier]
    assert not missing and not outside, f"run scripts/write_constraints.py: missing {missing}, outside {outside}"


def test_the_dockerfile_and_setup_venv_install_with_the_constraints() -> None:
    # Docker cannot run here: read the Dockerfile's instructions (continuations joined) instead
    lines = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = [line.split(maxsplit=1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert all(word in {"FROM", "WORKDIR", "COPY", "RUN", "USER", "ENV", "EXPOSE", "CMD", "ENTRYPOINT", "ARG"} for word, _ in instructions)
    copied = [src for word, args in instructions if word == "COPY" for src in args.split()[:-1]]
    assert all((ROOT / src).exists() for src in copied), copied
    installs = [args for word, args in instructions if word == "RUN" and "pip install" in args]
    assert "constraints.txt" in copied and installs and all("-c constraints.txt" in args for args in installs)
    lib = (ROOT / "scripts" / "lib.sh").read_text()
    assert "pip install --progress-bar off -c constraints.txt" in lib
    assert "cat pyproject.toml constraints.txt | sha256sum" in lib  # a changed pin re-installs
