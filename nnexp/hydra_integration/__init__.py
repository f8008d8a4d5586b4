"""nnexp's Hydra integration, on Hydra's public plugin interfaces.

- ``launcher``: the in-process launcher (a composition cache over Hydra's ``Launcher``);
- ``batched_launcher``: batchable jobs trained together as stacks, each job then recorded;
- ``sweeper``: the grid sweeper (Hydra's ``Sweeper``), validating jobs through the launcher's cache;
- ``job_record``: a job's dir as Hydra's ``run_job`` makes it, for results trained ahead;
- ``sweep_job``: the task body of one sweep job; ``app``: the ``hydra.main`` application;
- ``callback``: the sweep summary when a multirun ends.

Hydra instantiates plugins only from the ``hydra_plugins`` namespace: ``hydra_plugins.nnexp_launcher``
(``nnexp/hydra_plugin``) names these classes there. Private Hydra and OmegaConf code is reached
only through ``nnexp.compat``.
"""
