"""The one place nnexp calls torch's private functions, each for speed, each with a public fallback.

``torch._foreach_*`` (one kernel launch for a list of tensors), ``torch._fused_adam_`` (the kernel
``torch.optim.Adam(fused=True)`` runs), ``torch._utils._flatten_dense_tensors`` and the CPU feature
probes are not part of torch's public API: their names and signatures may change between releases.
Each is looked up here; where it is missing, or refuses the call, the public path gives the same
result (the foreach and flatten fallbacks loop over the tensors; the fused-Adam fallback calls
``torch.optim.adam.adam(fused=True)``, the same kernel behind a public function).
"""

from __future__ import annotations

import functools
import logging
import operator
from typing import Any, Callable, Sequence

import torch

log = logging.getLogger(__name__)
Tensors = Sequence[torch.Tensor]


@functools.cache
def _private(dotted: str) -> Callable | None:
    """torch's private function ``dotted`` (``_foreach_norm``, ``cpu._is_amx_tile_supported``), or
    None where this torch has none (said once, at debug level)."""
    try:
        found = operator.attrgetter(dotted)(torch)
    except AttributeError:
        found = None
    if not callable(found):
        log.debug("nnexp.torch_compat: torch.%s is missing; its public fallback is used", dotted)
        return None
    return found


def foreach_norm(tensors: Tensors, ord: float = 2) -> list[torch.Tensor]:
    """Each tensor's vector ``ord``-norm."""
    fast = _private("_foreach_norm")
    if fast is not None:
        return list(fast(tensors, ord))
    return [torch.linalg.vector_norm(t, ord) for t in tensors]


def foreach_sign(tensors: Tensors) -> list[torch.Tensor]:
    """Each tensor's sign."""
    fast = _private("_foreach_sign")
    return list(fast(tensors)) if fast is not None else [t.sign() for t in tensors]


def foreach_add_(targets: Tensors, others: Tensors | float, alpha: float = 1) -> None:
    """``target += alpha * other`` for each pair (``others`` may be one number for all)."""
    fast = _private("_foreach_add_")
    if fast is not None:
        if isinstance(others, (int, float)):
            fast(targets, others)
        else:
            fast(targets, others, alpha=alpha)
        return
    for target, other in zip(targets, others if not isinstance(others, (int, float)) else [others] * len(targets)):
        if isinstance(other, torch.Tensor):
            target.add_(other, alpha=alpha)
        else:
            target.add_(other)


def foreach_mul_(targets: Tensors, factor: float) -> None:
    """``target *= factor`` for each tensor."""
    _each_in_place("mul_", targets, factor)


def foreach_div_(targets: Tensors, divisor: float) -> None:
    """``target /= divisor`` for each tensor (a true division, not a product by ``1 / divisor``)."""
    _each_in_place("div_", targets, divisor)


def _each_in_place(method: str, targets: Tensors, number: float) -> None:
    """``target.<method>(number)`` for each tensor, through ``torch._foreach_<method>`` where it exists."""
    fast = _private(f"_foreach_{method}")
    if fast is not None and targets:  # torch's refuses an empty list
        fast(targets, number)
        return
    for target in targets:
        getattr(target, method)(number)


def foreach_mul(tensors: Tensors, factor: float) -> list[torch.Tensor]:
    """Each tensor times ``factor``, as new tensors."""
    fast = _private("_foreach_mul")
    return list(fast(tensors, factor)) if fast is not None else [t * factor for t in tensors]


def flatten_dense_tensors(tensors: Tensors) -> torch.Tensor:
    """The tensors' elements in one new flat tensor (one all-reduce instead of one per tensor)."""
    fast = _private("_utils._flatten_dense_tensors")
    if fast is not None:
        return fast(tensors)
    return torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.empty(0)


def unflatten_dense_tensors(flat: torch.Tensor, like: Tensors) -> list[torch.Tensor]:
    """``flat`` cut back into tensors shaped as ``like`` (views of ``flat``)."""
    fast = _private("_utils._unflatten_dense_tensors")
    if fast is not None:
        return list(fast(flat, like))
    pieces, start = [], 0
    for tensor in like:
        pieces.append(flat.narrow(0, start, tensor.numel()).view_as(tensor))
        start += tensor.numel()
    return pieces


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has AVX512-BF16 or AMX (bf16 runs faster than fp32 there). Public fallback:
    torch's reported CPU capability names AMX where torch dispatches to it; otherwise False, the
    safe answer (fp32)."""
    probes = [_private("cpu._is_avx512_bf16_supported"), _private("cpu._is_amx_tile_supported")]
    if all(probe is not None for probe in probes):
        try:
            return any(bool(probe()) for probe in probes)
        except RuntimeError:  # a torch built without the CPU feature queries
            pass
    try:
        return "AMX" in str(torch.backends.cpu.get_cpu_capability()).upper()
    except (AttributeError, RuntimeError):
        return False


def fused_adam_(params: Tensors, grads: Tensors, exp_avgs: Tensors, exp_avg_sqs: Tensors, steps: Tensors, *,
                lr: float, beta1: float, beta2: float, eps: float, weight_decay: float = 0.0) -> bool:
    """One step of torch's fused Adam kernel, in place (``torch.optim.Adam(fused=True)``'s arithmetic,
    bit for bit); returns False where neither the kernel nor torch's functional Adam takes the call,
    so the caller runs Adam's arithmetic itself."""
    arguments: dict[str, Any] = dict(lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay, eps=eps,
                                     amsgrad=False, maximize=False)
    fast = _private("_fused_adam_")
    if fast is not None:
        try:
            fast(list(params), list(grads), list(exp_avgs), list(exp_avg_sqs), [], list(steps), **arguments)
            return True
        except (TypeError, RuntimeError) as error:  # a changed signature: the public path below
            log.debug("nnexp.torch_compat: torch._fused_adam_ refused the call (%s)", error)
    try:
        from torch.optim.adam import adam

        for step in steps:  # the functional form counts the step itself, as Adam.step does
            step.sub_(1)
        adam(list(params), list(grads), list(exp_avgs), list(exp_avg_sqs), [], list(steps), fused=True, **arguments)
        return True
    except (ImportError, TypeError, RuntimeError) as error:
        log.debug("nnexp.torch_compat: torch.optim.adam.adam(fused=True) refused the call (%s)", error)
        return False
