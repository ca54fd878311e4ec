"""Fail if a pip resolution report (``pip install --dry-run --report FILE``) would build anything from source.

Usage: python .ci/wheels_only.py REPORT.json [NAME_ALLOWED_FROM_SOURCE ...]
The project itself (an editable install of this folder) is always allowed.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    report = json.loads(open(argv[0], encoding="utf-8").read())
    allowed = {name.lower() for name in argv[1:]}
    built = []
    for item in report["install"]:
        name = item["metadata"]["name"].lower()
        info = item.get("download_info", {})
        if "dir_info" in info or name in allowed:  # the project's own folder
            continue
        url = info.get("url", "")
        if not url.split("#")[0].endswith(".whl"):
            built.append(f"{name} {item['metadata']['version']} ({url or 'no url'})")
    if built:
        print("these would be built from source:\n  " + "\n  ".join(built), file=sys.stderr)
        return 1
    print(f"wheels only: {len(report['install'])} packages resolved, none built from source")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
