"""Prints the packages whose newest resolvable version differs from constraints.txt, one "name: tested -> newest" line
each (nothing when the newest versions are the tested ones). Reads the report of
``pip install --dry-run --ignore-installed --report REPORT -e ".[dev]"``.

    python .ci/compare_versions.py REPORT constraints.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from packaging.utils import canonicalize_name


def main(report: str, constraints: str) -> int:
    tested = {}
    for line in Path(constraints).read_text().splitlines():
        if line and not line.startswith("#") and "==" in line:
            name, version = line.split("==", 1)
            tested[canonicalize_name(name)] = version.strip()
    for item in json.loads(Path(report).read_text())["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        old = tested.get(canonicalize_name(name))
        if old is not None and old != version:
            print(f"{name}: tested {old} -> newest {version}")
        elif old is None and canonicalize_name(name) != "video-pipeline":
            print(f"{name}: not in the tested set -> newest {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
