"""Whether a network fits in memory, judged before any of it is allocated.

The estimate is parameters x 4 bytes (float32) x 4 (weights, gradients and two optimiser moments),
plus one batch's activations, forward and backward (for conv nets, the feature maps). It is
compared with the memory this machine has available now and, for a run on a GPU, with that
device's free memory: a network far beyond it is one line with the estimate and the setting to
change, instead of minutes of swapping or an allocator's traceback.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Callable, Sequence

from nnexp.errors import ConfigError

BYTES = 4  # float32
COPIES = 4  # weights, gradients, and Adam's two moments (SGD with momentum keeps fewer)


def mlp_size(n_inputs: int, hidden_sizes: Sequence[int], n_outputs: int) -> tuple[int, int]:
    """(parameters, activations per example) of a dense stack."""
    widths = [n_inputs, *map(int, hidden_sizes), n_outputs]
    return sum((a + 1) * b for a, b in zip(widths, widths[1:])), sum(widths[1:])


def cnn_size(input_shape: Sequence[int], blocks: Sequence[dict], hidden_sizes: Sequence[int], n_outputs: int) -> tuple[int, int]:
    """(parameters, activations per example) of conv blocks then a dense head (shapes as ``nnexp.models.cnn``)."""
    channels, height, width = (1, *input_shape) if len(input_shape) == 2 else tuple(input_shape)
    parameters = activations = 0
    for block in blocks:
        filters, kernel = int(block.get("filters", 1)), int(block.get("kernel", 3))
        stride, padding, pool = int(block.get("stride", 1)), int(block.get("padding", 0)), int(block.get("pool", 0) or 1)
        parameters += (channels * kernel * kernel + 1) * filters
        height = max((height + 2 * padding - kernel) // stride + 1, 1)
        width = max((width + 2 * padding - kernel) // stride + 1, 1)
        activations += 2 * filters * height * width  # the conv's output and its activation's
        height, width, channels = max(height // pool, 1), max(width // pool, 1), filters
    head, head_activations = mlp_size(channels * height * width, hidden_sizes, n_outputs)
    return parameters + head, activations + head_activations


def estimate_bytes(model: Callable, input_shape: Sequence[int], n_outputs: int, batch_size: int = 200) -> int | None:
    """Bytes a ``model`` factory's network needs to train on batches of ``batch_size``; None for
    a network nnexp cannot size from its settings (a user's own ``_target_``)."""
    settings = model.keywords if isinstance(model, partial) else {}
    hidden = settings.get("hidden_sizes", (100,) if "blocks" not in settings else (64,))
    try:
        if "blocks" in settings:
            parameters, activations = cnn_size(input_shape, settings["blocks"], hidden, n_outputs)
        elif "hidden_sizes" in settings:
            parameters, activations = mlp_size(math.prod(input_shape), hidden, n_outputs)
        else:
            return None
    except (TypeError, ValueError):  # a malformed setting: the network's constructor says which
        return None
    return BYTES * (COPIES * parameters + 2 * batch_size * activations)


def available_bytes() -> int | None:
    """Memory this machine can give a new allocation now (MemAvailable), or None when unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001  (psutil missing or unable to read: then nothing is refused)
        return None


def cuda_free_bytes(index: int) -> int | None:
    """Free memory of CUDA device ``index`` now (``torch.cuda.mem_get_info``), or None when unknown."""
    try:
        import torch

        return int(torch.cuda.mem_get_info(index)[0])
    except Exception:  # noqa: BLE001  (no such device, or no driver: Lightning's Trainer says so)
        return None


def cuda_index(trainer) -> int | None:
    """The CUDA device a run trains on (``trainer.accelerator`` gpu or cuda, or auto with a GPU present;
    the first of ``trainer.devices``), or None when it trains elsewhere."""
    if str(trainer.get("accelerator", "cpu")) not in ("gpu", "cuda", "auto"):
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    devices = trainer.get("devices", 1)
    if isinstance(devices, str) and "," in devices:  # Lightning's "1,3": device indices, not a count
        return int(devices.split(",")[0])
    if not isinstance(devices, (int, str)) and devices:  # a list of device indices
        return int(list(devices)[0])
    return 0


def check_fits(model: Callable, input_shape: Sequence[int], n_outputs: int, batch_size: int = 200,
               cuda: int | None = None, *, free: int | None = None, cuda_free: int | None = None) -> None:
    """Raise ConfigError naming the setting to change when the network cannot fit in this machine's
    memory, or, when it trains on CUDA device ``cuda``, in that device's free memory. ``free`` and
    ``cuda_free`` (bytes) stand in for the memory measured now."""
    needed = estimate_bytes(model, input_shape, n_outputs, batch_size)
    if needed is None:
        return
    free = available_bytes() if free is None else free
    if free is not None and needed > free:
        raise ConfigError(*_size_setting(model, input_shape, n_outputs, batch_size, needed),
                          f"a network that fits in memory: this one needs about {gib(needed)} to train "
                          f"(weights, gradients, optimiser state and a batch's activations), and {gib(free)} is free; "
                          "use fewer or narrower layers, or a smaller batch_size")
    if cuda is None:
        return
    cuda_free = cuda_free_bytes(cuda) if cuda_free is None else cuda_free
    if cuda_free is not None and needed > cuda_free:
        raise ConfigError(*_size_setting(model, input_shape, n_outputs, batch_size, needed),
                          f"a run that fits in the free memory of GPU cuda:{cuda}: it needs about {gib(needed)} "
                          f"(weights, gradients, optimiser state and a batch's activations), and {gib(cuda_free)} is free "
                          "there; use a smaller batch_size, fewer or narrower layers (model.hidden_sizes), or "
                          "trainer.accelerator=cpu")


def _size_setting(model: Callable, input_shape: Sequence[int], n_outputs: int, batch_size: int, needed: int) -> tuple[str, object]:
    """(key, value) of the setting that needs the most of ``needed``: the batch size when a batch's
    activations outweigh the network's state, else the conv blocks or the dense layers."""
    settings = model.keywords
    if 2 * estimate_bytes(model, input_shape, n_outputs, 0) < needed:
        return "batch_size", batch_size
    key = "model.hidden_sizes"
    if "blocks" in settings:  # blame the part that needs the most: the conv blocks or the dense head
        head_only = estimate_bytes(partial(model.func, blocks=[], hidden_sizes=settings.get("hidden_sizes", (64,))),
                                   input_shape, n_outputs, batch_size)
        key = "model.blocks" if 2 * (head_only or 0) < needed else key
    value = settings.get(key.split(".")[1])
    return key, list(value) if isinstance(value, (list, tuple)) else value


def check_run_fits(cfg, model: Callable, input_shape: Sequence[int], n_outputs: int, n_train: int) -> None:
    """``check_fits`` for a run's config: its batch rows (L-BFGS: the whole training split) and its device."""
    from nnexp.config import resolve_batch_size
    from nnexp.pairings import LBFGS_TARGETS

    full_batch = cfg.optim.get("_target_") in LBFGS_TARGETS
    rows = n_train if full_batch else resolve_batch_size(cfg.batch_size, n_train, full_batch_only=False)
    check_fits(model, input_shape, n_outputs, rows, cuda_index(cfg.trainer))


def gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"
