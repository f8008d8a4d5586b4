"""A grid sweep's jobs: the cartesian product of its swept values, in Hydra's order."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

SWEEP_RECORD = "multirun.yaml"  # a sweep dir's recorded config (Hydra writes it before the jobs)
GRID_SWEEPERS = ("InProcessSweeper", "GridSweeper", "BasicSweeper")


def grid(overrides: Sequence) -> list[list[str]]:
    """Every job's overrides (from Hydra's parsed ``Override``s): the cartesian product of the
    swept values, the first key varying slowest, as Hydra's basic sweeper orders them. A key
    given twice takes its last value."""
    from hydra.errors import HydraException

    choices: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            raise HydraException(f"{override.input_line}: a grid sweep takes a list or range of values, not an interval")
    return [list(job) for job in itertools.product(*choices.values())]


def recorded_grid(sweep_dir: Path) -> list[list[str]] | None:
    """Every job's overrides of the grid sweep recorded in ``sweep_dir`` (None when it is not a
    grid sweep, e.g. Optuna's, or has no readable record)."""
    import yaml

    try:
        hydra = yaml.safe_load((Path(sweep_dir) / SWEEP_RECORD).read_text())["hydra"]
        sweeper = hydra["sweeper"]
        if not str(sweeper.get("_target_", "")).endswith(GRID_SWEEPERS):
            return None
        lines = [f"{key}={value}" for key, value in (sweeper.get("params") or {}).items()] + list(hydra["overrides"]["task"])
        from hydra.core.override_parser.overrides_parser import OverridesParser

        return grid(OverridesParser.create().parse_overrides(lines))
    except Exception:  # an unreadable record: the summary lists the job dirs it finds
        return None
