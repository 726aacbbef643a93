"""Writes constraints.txt: the exact versions, installed here, of everything ``video-pipeline[dev]`` pulls in.

    python .ci/freeze_constraints.py            # after `pip install -e ".[dev]"` and a passing test suite

The file is the tested set that .ci/run installs (``pip install -c constraints.txt -e ".[dev]"``). Only the project's
requirement closure is written (walked through each distribution's own metadata, markers evaluated here), so
packages that merely happen to be installed on the machine are left out.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "video-pipeline"
HEADER = """\
# The versions the test suite passed with (python .ci/freeze_constraints.py writes this file; .ci/run installs it).
# Python {python}. Newer releases are tried by .ci/run's second step, which names every package that differs.
"""


def closure(root: str, extras: set[str]) -> dict[str, str]:
    """{distribution name: installed version} of ``root`` and everything it requires, with ``extras``."""
    found: dict[str, str] = {}
    todo = [(root, frozenset(extras))]
    seen: set[tuple[str, frozenset]] = set()
    while todo:
        name, wanted = todo.pop()
        key = (canonicalize_name(name), wanted)
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # a requirement whose marker is false here, or an optional one that is not installed
        found[dist.metadata["Name"]] = dist.version
        for line in dist.requires or []:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in wanted] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    found.pop(PROJECT, None)
    return found


def main() -> int:
    pinned = closure(PROJECT, {"dev"})
    lines = [f"{name}=={version}" for name, version in sorted(pinned.items(), key=lambda kv: kv[0].lower())]
    target = ROOT / "constraints.txt"
    target.write_text(HEADER.format(python=".".join(map(str, sys.version_info[:3]))) + "\n".join(lines) + "\n")
    print(f"wrote {len(lines)} pins to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
