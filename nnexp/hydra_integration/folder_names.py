"""A Hydra callback that refuses a name which would put a folder outside its root (``task_name``,
``hydra.job.name`` and a study's name, from a user's config file as from the command line) after
Hydra composes the config and before it makes any folder."""

from __future__ import annotations

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nnexp.config_files import composed_path_names
from nnexp.errors import NnexpError, Refusal


class FolderNamesChecked(Callback):
    """Runs first among nnexp's callbacks (``configs/hydra/default.yaml``): the run dir's claim makes
    the folder. Hydra turns an Exception raised in a callback into a warning and goes on, so the
    refusal leaves as ``Refusal`` (a SystemExit), which the entry points turn back into its line
    (the command prints it, the Python API raises the NnexpError it carries)."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        refuse_names_outside_roots(config)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        refuse_names_outside_roots(config)


def refuse_names_outside_roots(config: DictConfig) -> None:
    """One line and exit 2 for a composed config whose names would leave their root folders."""
    try:
        composed_path_names(config)
    except NnexpError as error:
        raise Refusal(error) from None
