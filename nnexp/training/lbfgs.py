"""scikit-learn's L-BFGS: one run of scipy's L-BFGS-B over all of a network's parameters.

scikit-learn calls ``scipy.optimize.minimize(method="L-BFGS-B")`` once per fit, with
``maxiter=max_iter``, ``maxfun=max_fun`` and ``gtol=tol``. torch's ``LBFGS.step`` is a different
algorithm (its own line search and first step) with a per-call budget, and it returns when it
runs out of function evaluations as quietly as when it has converged. Here the budgets and the
stop reasons are scipy's, and the parameters are optimised in float64 by default, as
scikit-learn does on float64 data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

# What ended an L-BFGS fit, by scipy's status and message.
CONVERGED = "converged"  # projected gradient's largest entry <= optim.tol (scikit-learn's gtol)
CONVERGED_FTOL = "converged_ftol"  # relative loss reduction <= scipy's ftol
MAX_ITER = "max_iter"
MAX_FUN = "max_fun"
LINE_SEARCH = "line_search_failed"


class LBFGS(torch.optim.Optimizer):
    """Full-batch L-BFGS with scikit-learn's budget: ``max_iter`` iterations and ``max_fun``
    function evaluations in all, stopping when the largest gradient entry is at most ``tol``.

    ``history_size`` is scipy's ``maxcor`` (scikit-learn leaves it at 10). ``float64`` runs the
    fit in double precision (the network goes back to its own dtype afterwards); float32 losses
    are too coarse for scipy's ``ftol`` test and line search on many small problems.
    """

    def __init__(self, params, max_iter: int = 200, max_fun: int = 15000, tol: float = 1e-4,
                 history_size: int = 10, float64: bool = True):
        for name, value in (("max_iter", max_iter), ("max_fun", max_fun), ("history_size", history_size)):
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value}")
        if not (tol >= 0 and math.isfinite(tol)):
            raise ValueError(f"tol must be a finite number >= 0, got {tol}")
        super().__init__(params, dict(max_iter=int(max_iter), max_fun=int(max_fun), tol=float(tol),
                                      history_size=int(history_size), float64=bool(float64)))

    @property
    def settings(self) -> dict:
        return self.param_groups[0]

    def step(self, closure=None):  # noqa: D102 - Lightning's interface; nnexp calls minimize()
        raise RuntimeError("nnexp's LBFGS runs a whole fit at once: call minimize(closure)")

    def minimize(self, closure: Callable[[], torch.Tensor],
                 on_iteration: Callable[[int, float], None] | None = None,
                 layout: Sequence[tuple[torch.Tensor, bool]] | None = None,
                 objective: Callable[[np.ndarray], tuple[float, np.ndarray]] | None = None) -> "LBFGSOutcome":
        """Run L-BFGS-B from the current parameters; ``closure`` zeroes the gradients, computes
        the loss and calls ``backward``; or ``objective`` gives the loss and gradient at scipy's
        vector itself (the closure is then not called). ``on_iteration(iteration, loss)`` follows
        every accepted step. ``layout`` orders the parameters in scipy's vector, each as (parameter, transposed)
        (:func:`sklearn_layout`); by default they follow one another as given. The parameters end
        at scipy's final point."""
        params = [p for group in self.param_groups for p in group["params"]]
        layout = list(layout) if layout is not None else [(p, False) for p in params]
        if sorted(map(id, params)) != sorted(id(p) for p, _ in layout):
            raise ValueError("layout must hold each of the optimiser's parameters once")
        settings = self.settings
        native = [p for p, _ in layout]  # each parameter flattened as torch stores it, in layout's order
        to_scipy = scipy_order(layout)  # scipy's vector = the native vector[to_scipy]
        to_native = torch.empty_like(to_scipy)
        to_native[to_scipy] = torch.arange(len(to_scipy))
        to_scipy = to_scipy.to(native[0].device) if native else to_scipy  # it gathers the gradients where they are
        x0 = pack(layout)

        def load(x: np.ndarray) -> None:
            flat = torch.index_select(torch.from_numpy(x), 0, to_native)  # one gather, then a contiguous copy a parameter
            offset = 0
            with torch.no_grad():
                for p in native:
                    p.copy_(flat[offset: offset + p.numel()].view_as(p))
                    offset += p.numel()

        def loss_and_grad(x: np.ndarray):
            load(x)
            loss = closure().detach()
            grad = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in native])
            return float(loss), torch.index_select(grad, 0, to_scipy).double().cpu().numpy()

        def iteration_done(iteration: int, loss: float, x: np.ndarray) -> None:
            if objective is not None:  # the network is at the accepted point: its validation scores, checkpoints
                load(x)
            if on_iteration is not None:
                on_iteration(iteration, loss)

        with _blas_threads_for(objective is not None):
            result, outcome = run_lbfgsb(objective or loss_and_grad, x0, settings, iteration_done)
        load(result.x)
        return outcome


def _blas_threads_for(numpy_objective: bool):
    """scipy's OpenBLAS on one thread: its threads and torch's OpenMP threads spin against each
    other between the small calls of a fit (moons, 200 iterations: 2.7 s against 0.25 s). Where
    numpy computes the objective torch is idle, and numpy's own OpenBLAS keeps its default
    threads, as in a scikit-learn script: OpenBLAS's sums on wide matrices depend on its thread
    count, and a fixed count keeps a seed's fit the same from run to run, and scikit-learn's."""
    from threadpoolctl import ThreadpoolController, threadpool_limits

    if not numpy_objective:
        return threadpool_limits(limits={"libscipy_openblas": 1})
    controller = ThreadpoolController()
    scipys = [info["filepath"] for info in controller.info()  # scipy.libs/, or scipy/.dylibs/ on macOS
              if any(part.startswith("scipy") for part in Path(info["filepath"]).parts[-3:-1])]
    return controller.select(filepath=scipys).limit(limits=1)


def sklearn_layout(network: nn.Module) -> list[tuple[torch.Tensor, bool]] | None:
    """scikit-learn's parameter vector for a dense network (``_pack``): every layer's weights as
    (fan_in, fan_out), layer by layer, then every layer's biases; None for any other network.

    The order changes no step in exact arithmetic, but scipy's sums over the vector round in it,
    and a long L-BFGS run magnifies those last bits."""
    params = [p for p in network.parameters() if p.requires_grad]
    linears = [layer for layer in network.modules() if isinstance(layer, nn.Linear)]
    if not linears or any(layer.bias is None for layer in linears):
        return None
    layout = [(layer.weight, True) for layer in linears] + [(layer.bias, False) for layer in linears]
    if sorted(map(id, params)) != sorted(id(p) for p, _ in layout):
        return None
    return layout


def pack(layout: Sequence[tuple[torch.Tensor, bool]]) -> np.ndarray:
    """The parameters' values as one float64 vector, in ``layout``'s order."""
    native = torch.cat([p.detach().reshape(-1) for p, _ in layout])
    return torch.index_select(native, 0, scipy_order(layout).to(native.device)).double().cpu().numpy()


def scipy_order(layout: Sequence[tuple[torch.Tensor, bool]]) -> torch.Tensor:
    """The permutation from the parameters flattened as stored, one after another in ``layout``'s
    order, to ``layout``'s vector (transposed ones column by column): one gather per evaluation
    instead of a strided copy per transposed parameter."""
    pieces, offset = [], 0
    for p, transposed in layout:
        positions = torch.arange(offset, offset + p.numel()).view(p.shape)
        pieces.append((positions.t() if transposed else positions).reshape(-1))
        offset += p.numel()
    return torch.cat(pieces) if pieces else torch.zeros(0, dtype=torch.long)


def run_lbfgsb(loss_and_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, settings: dict,
               on_iteration: Callable[[int, float, np.ndarray], None] | None = None):
    """scipy's L-BFGS-B from ``x0`` with an optimiser's ``settings`` (scikit-learn's call);
    ``on_iteration(iteration, loss, x)`` follows every accepted step. Returns scipy's result and
    nnexp's :class:`LBFGSOutcome`. The caller pins scipy's BLAS threads (process-wide)."""
    import scipy.optimize

    iterations = 0

    def callback(intermediate_result):
        nonlocal iterations
        iterations += 1
        if on_iteration is not None:
            on_iteration(iterations, float(intermediate_result.fun), intermediate_result.x)

    result = scipy.optimize.minimize(
        loss_and_grad, x0, method="L-BFGS-B", jac=True, callback=callback,
        options={"maxiter": settings["max_iter"], "maxfun": settings["max_fun"], "gtol": settings["tol"],
                 "maxcor": settings["history_size"]},
    )
    return result, LBFGSOutcome(stop_reason(result, settings["max_iter"]), int(result.nit), int(result.nfev),
                                float(result.fun), str(result.message))


@dataclass
class LBFGSOutcome:
    """How an L-BFGS fit ended: the reason, iterations, function evaluations, final loss and scipy's message."""

    reason: str
    iterations: int
    evaluations: int
    loss: float
    message: str


def stop_reason(result, max_iter: int) -> str:
    """nnexp's stop reason for scipy's result (status 0: a tolerance, 1: a budget, 2: the line search)."""
    message = str(result.message).upper()
    if result.status == 0:
        return CONVERGED if "GRADIENT" in message else CONVERGED_FTOL
    if result.status == 1:
        return MAX_ITER if result.nit >= max_iter else MAX_FUN
    return LINE_SEARCH


def is_lbfgs(factory) -> bool:
    """Whether a ``_partial_`` optimiser factory makes nnexp's (full-batch) L-BFGS or torch's."""
    func = getattr(factory, "func", factory)
    return func is LBFGS or func is torch.optim.LBFGS
