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
    declared = [Requirement(line) for line in [*project["dependencies"], *project["optional-dependencies"]["test"]]]
    pins = dict(
        (canonical(name), Version(version))
        for name, version in (line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if line and not line.startswith("#"))
    )
    missing = [str(req) for req in declared if canonical(req.name) not in pins]
    outside = [f"{req} (pinned {pins[canonical(req.name)]})" for req in declared
               if canonical(req.name) in pins and pins[canonical(req.name)] not in req.specifier]
    assert not missing and not outside, f"run scripts/write_constraints.py: missing {missing}, outside {outside}"
