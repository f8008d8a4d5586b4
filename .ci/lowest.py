"""Print pip constraints that pin each requirement in pyproject.toml to its lower bound (``>=X`` gives
``==X``), so CI can test the oldest releases nnexp says it supports. torch is left to the caller:
CI installs the local CPU wheel, and older CPU builds are not on PyPI."""

import re
import sys
import tomllib
from pathlib import Path

project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
pins = {}
for requirement in requirements:
    name = re.match(r"\s*([A-Za-z0-9_.\-]+)", requirement).group(1).lower().replace("_", "-")
    bound = re.search(r">=\s*([0-9][^,;\s]*)", requirement)
    if bound and name not in ("torch", "nnexp"):
        pins[name] = bound.group(1)
sys.stdout.write("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
