"""nnexp's Hydra plugins under the names Hydra requires, as ``hydra_plugins.nnexp_launcher``.

Hydra instantiates launchers and sweepers only from the ``hydra_plugins`` namespace, and scans
(and re-executes) the modules it finds there at start-up. The code lives in
``nnexp.hydra_integration``; these subclasses only give it names here, so that a rescan makes new
names for the same classes instead of classes built on stale bases. Keep this module light.
"""

from __future__ import annotations

from nnexp.hydra_integration import batched_launcher, cluster_launcher, launcher, optuna_sweeper, sweeper


class InProcessLauncher(launcher.InProcessLauncher):
    """``hydra/launcher=nnexp``: jobs one after another in this process, composed through a cache."""


class BatchedLauncher(batched_launcher.BatchedLauncher):
    """``hydra/launcher=nnexp_batched``: batchable jobs trained together as stacks."""


class InProcessSweeper(sweeper.GridSweeper):
    """``hydra/sweeper=nnexp``: the grid sweeper."""


class OptunaSweeper(optuna_sweeper.OptunaSweeper):
    """``hydra/sweeper=optuna``: Optuna's ask-and-tell over Hydra's sweep syntax."""


class ClusterLauncher(cluster_launcher.ClusterLauncher):
    """``hydra/launcher=nnexp_cluster``: jobs packed into SLURM (or local) array tasks."""
