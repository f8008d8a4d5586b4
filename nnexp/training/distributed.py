"""Data-parallel training across processes for nnexp's in-memory epochs.

Lightning launches the processes (spawn: Hydra's output dirs and multiruns are untouched, unlike
the launcher that re-runs ``sys.argv``) and sets up the process group. nnexp's epoch loop runs many
minibatch steps inside one Lightning step, which DistributedDataParallel's hooks (one backward
per forward) cannot follow, so the model is left unwrapped and the loop averages gradients itself:
every process takes its share of each global minibatch, and the gradients are all-reduced weighted
by rows, which gives exactly the full minibatch's gradient.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from pytorch_lightning.strategies import DDPStrategy

from nnexp import torch_compat


class InMemoryDDP(DDPStrategy):
    """Lightning's DDP launch and process group, without the DistributedDataParallel wrapper."""

    def __setstate__(self, state: dict) -> None:
        # A spawned worker is a fresh interpreter that never ran the entry point's set-up, and it
        # unpickles its strategy (with the trainer) first: quiet Lightning there, before the
        # trainer checks for srun and the process group announces itself.
        from nnexp.training.quiet import quiet_lightning

        quiet_lightning()
        super().__setstate__(state)

    def configure_ddp(self) -> None:
        # nnexp synchronises gradients itself (sync_gradients), once per minibatch step.
        pass

    def teardown(self) -> None:
        super().teardown()
        # Spawned workers end with os._exit, which skips the atexit hook that would close the
        # process group; a gloo group left open can abort the process as it exits.
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def world() -> tuple[int, int]:
    """(rank, number of processes); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Start every process from rank 0's weights."""
    for tensor in module.state_dict().values():
        dist.broadcast(tensor, src=0)


def sync_gradients(parameters: list[torch.Tensor], local_rows: int, global_rows: int) -> None:
    """Replace each gradient by the row-weighted average over processes (one all-reduce)."""
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    grads = [parameter.grad for parameter in parameters]
    flat = torch_compat.flatten_dense_tensors(grads).mul_(local_rows / global_rows)
    dist.all_reduce(flat)
    for grad, synced in zip(grads, torch_compat.unflatten_dense_tensors(flat, grads)):
        grad.copy_(synced)


def sum_over_processes(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over processes (itself when there is one)."""
    if world()[1] > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
    return tensor
