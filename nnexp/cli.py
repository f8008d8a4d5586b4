"""Console entry points. Heavy imports (torch, Lightning) happen only once a run starts."""

from __future__ import annotations

import gc
import math
import os
import sys
from importlib import resources

import hydra
from omegaconf import DictConfig

CONFIG_PACKAGE = "nnexp.configs"
USER_CONFIG_FLAGS = ("--config-dir", "-cd", "--config-path", "-cp", "hydra.searchpath")


def config_groups() -> dict[str, list[str]]:
    """Every config group shipped with nnexp and its options (files starting with _ are shared parts)."""
    root = resources.files(CONFIG_PACKAGE)
    return {
        group.name: sorted(
            item.name[: -len(".yaml")]
            for item in group.iterdir()
            if item.name.endswith(".yaml") and not item.name.startswith("_")
        )
        for group in root.iterdir()
        if group.is_dir() and group.name not in ("hydra", "__pycache__")
    }


def unknown_group_option(argv: list[str]) -> str | None:
    """A one-line message for ``group=option`` overrides naming an option nnexp does not have.

    Hydra's own message for this spans a dozen lines; with a user config dir the check is left to Hydra.
    """
    if any(arg.split("=")[0] in USER_CONFIG_FLAGS for arg in argv):
        return None
    groups = config_groups()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+")
        if key not in groups or any(ch in value for ch in "()[]{}$*"):
            continue
        for option in value.split(","):
            if option not in groups[key] and option != "null":
                return f"{key}={option} is not an option; choose one of: {', '.join(groups[key])}"
    return None


@hydra.main(config_path=f"pkg://{CONFIG_PACKAGE}", config_name="train", version_base="1.3")
def _train(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from nnexp.errors import NnexpError
    from nnexp.runner import run

    try:
        objective = run(cfg)
    except NnexpError as error:
        if os.environ.get("NNEXP_TRACEBACK"):
            raise
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    single_run = HydraConfig.get().mode == RunMode.RUN
    if single_run and cfg.mode == "train" and math.isnan(objective):
        raise SystemExit(1)  # diverged: metrics.json holds status "diverged"
    return objective


def main() -> None:
    """``nnexp [overrides]``: train the composed config; ``nnexp -m ...`` sweeps it."""
    problem = unknown_group_option(sys.argv[1:])
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2)
    try:
        _train()
    finally:
        # Skip the full garbage collection of every loaded module at interpreter exit (~0.7 s).
        gc.freeze()


if __name__ == "__main__":
    main()
