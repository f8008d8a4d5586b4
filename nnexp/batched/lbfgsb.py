"""scipy's L-BFGS-B without bounds, for a stack of minimisations at once, in torch.

Every member keeps its own state, as its own ``scipy.optimize.minimize(method="L-BFGS-B")``
would: its last ``history_size`` correction pairs, its Moré-Thuente line search (MINPACK-2's
``dcsrch``, with L-BFGS-B's constants ``ftol=1e-3, gtol=0.9, xtol=0.1`` and step bounds
``[0, 1e10]``), its budgets and its stopping tests. A round evaluates every running member's
trial point at once; then all members' line-search steps, updates and search directions run as
batched operations over the stack, and a member leaves the stack when its own test stops it.

What scipy's L-BFGS-B does with no bounds (``nbd = 0`` everywhere), and this module repeats:
  - the generalised Cauchy point is computed only while the memory is empty (the first iteration,
    and after a restart): with ``theta = 1`` it is ``x - g``, and the direction is
    ``d = (x - g) - x``; once pairs are stored the Cauchy search is skipped;
  - the subspace minimisation over all (free) variables is the L-BFGS step ``-H g``, ``H`` the
    compact-representation inverse Hessian with ``H0 = I / theta``, ``theta = y'y / s'y`` of the
    newest pair. It is the two-loop recursion's ``H`` (Byrd, Nocedal, Schnabel 1994); this module
    runs the two-loop recursion as two small triangular solves on the pairs' inner products (kept
    up to date as pairs come in, from the same pass over the pairs that takes g's products), so
    directions agree with scipy's to rounding, not bit for bit (tests/test_batched_math.py
    checks how many iterations stay equal). The step's
    projection is the identity, and ``d = (x + step) - x``, as scipy forms it;
  - the first line search starts at ``min(1 / ||d||, 1e10)``, every later one at 1; a trial
    point at step 1 is ``x + step`` itself, else ``stp * d + x``;
  - a pair is stored when ``s'y > eps * (-g'd) * stp``, with ``s'y`` taken as
    ``stp * (g_new'd - g'd)`` (scipy's ``dr``), and dropped when ``history_size`` are held;
  - a line search that fails (20 evaluations, or a direction that is not a descent) restarts
    from an empty memory, or ends the run (``line_search_failed``) when the memory was empty;
  - the tests follow each accepted step in scipy's order: ``max_iter``, then ``max_fun``
    (evaluations so far, the first included, above the budget), then the gradient's largest
    entry against ``tol`` (scipy's ``pgtol``), then the relative reduction
    ``(f_old - f) / max(|f_old|, |f|, 1) <= factr * eps`` (scipy's ``ftol``, default 2.2e-9).

The per-member scalars (the line search's state, budgets, stop tests) live on the host as
vectors over the members; one (M,)-sized transfer per round brings the losses and slopes over.
numpy's element-wise double arithmetic is C's, so the line search's decisions follow scipy's own
from the same inputs. Vectors of parameters (points, gradients, directions, pairs) stay on the
stack's device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import torch

from nnexp.batched.line_search import STEP_MAX, LineSearches
from nnexp.training.lbfgs import CONVERGED, CONVERGED_FTOL, LINE_SEARCH, MAX_FUN, MAX_ITER

EPS = float(np.finfo(float).eps)
SCIPY_FTOL = 2.2204460492503131e-09  # scipy.optimize.minimize's default for L-BFGS-B
MAX_LINE_SEARCH = 20  # scipy's maxls
MESSAGES = {
    CONVERGED: "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
    CONVERGED_FTOL: "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH",
    MAX_ITER: "STOP: TOTAL NO. OF ITERATIONS REACHED LIMIT",
    MAX_FUN: "STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT",
    LINE_SEARCH: "ABNORMAL: ",
}
NO_MEMBERS = np.zeros(0, np.int64)
REASONS = [CONVERGED, CONVERGED_FTOL, MAX_ITER, MAX_FUN, LINE_SEARCH]


class StackFunction(Protocol):
    """The members' objectives: ``(points (A, P)) -> (losses (A,), gradients (A, P), extra (A,) or None)``
    for the running members in order, fresh tensors each call (the stack keeps the gradients as
    its own), keeping no reference to ``points`` (the stack writes into it later);
    ``keep(indices)`` drops the others."""

    def __call__(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]: ...

    def keep(self, keep: torch.Tensor) -> None: ...


@dataclass
class StackResult:
    """Each member's final point (M, P), loss, iterations, evaluations and stop reason (nnexp's names)."""

    x: torch.Tensor
    loss: np.ndarray
    iterations: np.ndarray
    evaluations: np.ndarray
    reasons: list[str]


def two_loop(products: np.ndarray, SY: np.ndarray, YY: np.ndarray, head: np.ndarray, cols: np.ndarray,
             theta: np.ndarray, m: int) -> np.ndarray:
    """The two-loop recursion's coefficients from products, for members with ``cols`` pairs held
    (slots from ``head``, oldest first): ``H g = g / theta + sum_a c_a s_a + sum_a c_(m+a) y_a``.
    ``products``: (A, 2m), each pair's s'g and y'g; ``SY``, ``YY``: (A, m, m), whose diagonal
    ``SY[a, a]`` holds the line search's s'y (``1 / rho``); entries of empty slots are ignored.
    Returns (A, 2m).

    The recursion's two loops are two triangular systems in the pairs' products (in time order,
    ``R`` the upper triangle of S'Y, ``D`` its diagonal): the first loop's ``alpha = R^-1 S'g``, the
    second's ``beta = alpha + R^-T (gamma (Y'g - Y'Y alpha) - D alpha)``. Solved as two batched
    substitutions, they cost a few numpy calls a round instead of the loops' dozens per pair.
    ``np.linalg.solve`` pivots nothing on an upper-triangular matrix, so it substitutes backwards as
    the first loop does; the lower-triangular R^T is solved reversed (upper triangular again) for
    the same reason (pivoting there cost equal iterations against scipy: 62 against 74 on
    tests/test_batched_math.py's first member)."""
    A = len(cols)
    gamma = np.where(cols > 0, 1.0 / theta, 1.0)
    span = np.arange(m)
    order = (head[:, None] + span) % m  # each member's slots, oldest first
    valid = span < cols[:, None]  # (A, m): slots holding a pair
    both = valid[:, :, None] & valid[:, None, :]
    members = np.arange(A)[:, None, None]
    SYc = SY[members, order[:, :, None], order[:, None, :]]
    R = np.where(both, np.triu(SYc), np.eye(m, dtype=bool))  # empty slots solve to 0
    s_g = np.where(valid, np.take_along_axis(products[:, :m], order, 1), 0.0)
    y_g = np.where(valid, np.take_along_axis(products[:, m:], order, 1), 0.0)
    alpha = np.linalg.solve(R, s_g[..., None])
    YYc = np.where(both, YY[members, order[:, :, None], order[:, None, :]], 0.0)
    rhs = gamma[:, None] * (y_g - (YYc @ alpha)[..., 0]) - np.diagonal(R, axis1=1, axis2=2) * alpha[..., 0]
    alpha = alpha[..., 0]
    beta = alpha + np.linalg.solve(np.swapaxes(R, 1, 2)[:, ::-1, ::-1], rhs[:, ::-1, None])[:, ::-1, 0]
    coefficients = np.zeros((A, 2 * m))
    np.put_along_axis(coefficients[:, :m], order, alpha - beta, 1)
    np.put_along_axis(coefficients[:, m:], order, -gamma[:, None] * alpha, 1)
    return coefficients


def rows_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Each row's dot product: (A, P) x (A, P) -> (A,). (A product and a row sum: 3x faster here
    than a batched (1, P) x (P, 1) matmul.)"""
    return (a * b).sum(1)


def host(values: torch.Tensor) -> np.ndarray:
    """A float64 numpy copy of a (small) tensor."""
    return np.array(values.detach().cpu().numpy(), dtype=np.float64)


def minimize_stack(function: StackFunction, x0: torch.Tensor, max_iter: int, max_fun: int, tol: float,
                   history_size: int = 10, ftol: float = SCIPY_FTOL,
                   on_iteration: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None], None] | None = None) -> StackResult:
    """Minimise every member's objective from its row of ``x0`` (M, P), as scipy's
    ``minimize(method="L-BFGS-B", jac=True, options=dict(maxiter=max_iter, maxfun=max_fun,
    gtol=tol, maxcor=history_size, ftol=ftol))`` would, one run per member.
    ``on_iteration(members, iterations, losses, extra)`` follows each round's accepted steps
    (member numbers into x0's rows; ``extra`` is the function's third output at them)."""
    M, P, m = x0.shape[0], x0.shape[1], int(history_size)
    device, dtype = x0.device, x0.dtype
    factr_eps = (ftol / EPS) * EPS  # scipy passes factr = ftol / eps, and tests against factr * epsmch
    final_x = x0.clone()
    final_f = np.full(M, np.nan)
    iterations = np.zeros(M, np.int64)
    evaluations = np.zeros(M, np.int64)
    reasons = [""] * M

    ids = np.arange(M)  # the running members' numbers, in the function's order
    x = x0.clone()
    loss, g, extra = function(x)
    f = host(loss)
    nfev = np.ones(M, np.int64)
    nit = np.zeros(M, np.int64)
    ls_evals = np.zeros(M, np.int64)
    col = np.zeros(M, np.int64)  # pairs held
    head = np.zeros(M, np.int64)  # the oldest pair's slot
    theta = np.ones(M)
    # Each member's pairs, s in slots [0, m) and y in [m, 2m), and on the host their products
    # s_a'y_b (SY) and y_a'y_b (YY), updated as a pair comes in: a direction then takes one pass
    # over the pairs for their products with g and one to combine them (the two-loop recursion's
    # scalar work runs on the products), not the recursion's 4m passes.
    pairs = torch.zeros(M, 2 * m, P, device=device, dtype=dtype)
    SY = np.zeros((M, m, m))
    YY = np.zeros((M, m, m))
    searches = LineSearches(M)
    stp = np.zeros(M)
    gd0 = np.zeros(M)
    d = torch.zeros_like(x)
    z = torch.zeros_like(x)
    trial = torch.zeros_like(x)

    def pick(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Rows ``index`` of ``values``: ``values`` itself when that is every row (the usual round)."""
        return values if len(index) == len(values) else values.index_select(0, index)

    def masked(values: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
        """Rows of ``values`` where ``mask`` holds: ``values`` itself when it holds on every row."""
        return values if len(mask) == len(values) and mask.all() else values.index_select(0, torch.from_numpy(np.flatnonzero(mask)).to(device))

    def put(target: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> None:
        """Write ``values`` into rows ``index`` of ``target``: one copy when that is every row."""
        if len(index) == len(target):
            target.copy_(values)
        else:
            target[index] = values

    def stop(which: np.ndarray, reason: str, point: torch.Tensor, value: np.ndarray) -> None:
        members = ids[which]
        final_x[torch.from_numpy(members).to(device)] = point[torch.from_numpy(np.flatnonzero(which)).to(device)]
        final_f[members] = value[which]
        iterations[members] = nit[which]
        evaluations[members] = nfev[which]
        for member in members:
            reasons[member] = reason

    def directions(which: np.ndarray, new_pairs: np.ndarray = NO_MEMBERS, new_sy: np.ndarray | None = None) -> None:
        """New search directions (and points z = x + step) for members ``which`` from x and g:
        the Cauchy point's ``x - g`` with no pairs, else the L-BFGS step ``-H g``. Members
        ``new_pairs`` (among ``which``) have just stored a pair in their newest slot, whose s'y the
        line search measured as ``new_sy``: its products with their pairs come from the same pass
        over the pairs as g's."""
        rows = np.flatnonzero(which)
        if not len(rows):
            return
        index = torch.from_numpy(rows).to(device)
        if not col[rows].any():
            xs = pick(x, index)
            step_point = xs - pick(g, index)
        else:
            # Most rounds step most members: then every member's direction is formed (the others'
            # are dropped) rather than their pairs copied out, which cost as much as the products.
            every = 2 * len(rows) >= len(ids)
            formed = np.arange(len(ids)) if every else rows
            xs, gs, held = (x, g, pairs) if every else (pick(x, index), pick(g, index), pick(pairs, index))
            cols = col[formed]
            if len(new_pairs):  # each member's newest pair's s and y, and g, against every pair
                newest = torch.from_numpy((head[formed] + cols - 1) % m).to(device)
                members = torch.arange(len(formed), device=device)
                vectors = torch.stack([held[members, newest], held[members, newest + m], gs], 1)
            else:
                vectors = gs.unsqueeze(1)
            # As rows against [S Y]': the column [S Y]' g ran 6x slower (35 x 20 x 3201).
            dots = host(torch.bmm(vectors, held.transpose(1, 2)))
            if len(new_pairs):
                new_dots, up = dots[np.searchsorted(formed, new_pairs)], new_pairs
                slots = (head[up] + col[up] - 1) % m
                SY[up, slots, :] = new_dots[:, 0, m:]
                SY[up, :, slots] = new_dots[:, 1, :m]
                YY[up, slots, :] = new_dots[:, 1, m:]
                YY[up, :, slots] = new_dots[:, 1, m:]
                SY[up, slots, slots] = new_sy  # s'y as the line search measured it, as scipy's matupd keeps it
            coefficients = two_loop(dots[:, -1], SY[formed], YY[formed], head[formed], cols, theta[formed], m)
            gamma = torch.from_numpy(np.where(cols > 0, 1.0 / theta[formed], 1.0)).to(device, dtype)
            r = torch.baddbmm((gs * gamma[:, None]).unsqueeze(1), torch.from_numpy(coefficients).to(device, dtype).unsqueeze(1), held)
            step_point = xs - r.squeeze(1)
            no_pairs = torch.from_numpy(cols == 0).to(device)
            if no_pairs.any():  # members restarting beside members with pairs
                step_point = torch.where(no_pairs[:, None], xs - gs, step_point)
            if every and len(rows) < len(ids):
                xs, step_point = pick(xs, index), pick(step_point, index)
        put(z, index, step_point)
        put(d, index, step_point - xs)

    def start_searches(which: np.ndarray, first: bool = False) -> np.ndarray:
        """Start line searches for members ``which`` along d; returns the members whose
        direction is not a descent (their searches failed before a step)."""
        rows = np.flatnonzero(which)
        index = torch.from_numpy(rows).to(device)
        slopes = host(rows_dot(pick(g, index), pick(d, index)))
        gd0[rows] = slopes
        if first:
            norms = np.sqrt(host(rows_dot(pick(d, index), pick(d, index))))
            with np.errstate(divide="ignore"):
                stp[rows] = np.minimum(1.0 / norms, STEP_MAX)
        else:
            stp[rows] = 1.0
        ls_evals[rows] = 0
        failed = np.zeros(len(which), bool)
        failed[rows] = ~(slopes < 0)
        ok = which & ~failed
        searches.start(ok, stp[ok], f[ok], gd0[ok])
        return failed

    def trial_points(which: np.ndarray) -> None:
        rows = np.flatnonzero(which)
        if not len(rows):
            return
        index = torch.from_numpy(rows).to(device)
        steps = torch.from_numpy(stp[rows]).to(device, dtype)[:, None]
        points = torch.addcmul(pick(x, index), steps, pick(d, index))
        at_one = torch.from_numpy(stp[rows] == 1.0).to(device)[:, None]
        put(trial, index, torch.where(at_one, pick(z, index), points))

    def fail_searches(failed: np.ndarray) -> np.ndarray:
        """Members whose search failed: restart from an empty memory, or stop (memory already empty)."""
        ended = failed & (col == 0)
        restart = failed & (col > 0)
        if restart.any():
            col[restart], head[restart], theta[restart] = 0, 0, 1.0
            directions(restart)
            again = start_searches(restart)
            ended |= again  # col is 0 now: a second failure ends the run
        return ended

    # The start: scipy's gradient test at x0, then the first direction from the Cauchy point.
    stopped = np.zeros(M, bool)
    converged = np.abs(host(g.abs().amax(1))) <= tol
    if converged.any():
        stop(converged, CONVERGED, x, f)
        stopped |= converged
    running = ~stopped
    if running.any():
        directions(running)
        failed = start_searches(running, first=True)
        if failed.any():
            stop(failed, LINE_SEARCH, x, f)
            stopped |= failed
        trial_points(running & ~failed)

    while True:
        if stopped.any():  # members leave the stack
            keep = np.flatnonzero(~stopped)
            if not len(keep):
                break
            keep_t = torch.from_numpy(keep).to(device)
            function.keep(keep_t)
            x, g, d, z, trial, pairs = (t.index_select(0, keep_t) for t in (x, g, d, z, trial, pairs))
            ids, f, nfev, nit, ls_evals, col, head, theta, stp, gd0, SY, YY = (
                a[keep] for a in (ids, f, nfev, nit, ls_evals, col, head, theta, stp, gd0, SY, YY))
            searches.take(keep)
        n = len(ids)
        stopped = np.zeros(n, bool)

        loss_t, g_t, extra = function(trial)
        nfev += 1
        ls_evals += 1
        f_t = host(loss_t)
        gd_t = host(rows_dot(g_t, d))
        new_stp, done = searches.iterate(stp, f_t, gd_t)
        failed = ~done & (ls_evals >= MAX_LINE_SEARCH)
        going = ~done & ~failed
        stp_taken = stp.copy()
        stp = np.where(going, new_stp, stp)

        if done.any():  # accepted steps: scipy's NEW_X
            rows = np.flatnonzero(done)
            index = torch.from_numpy(rows).to(device)
            nit[rows] += 1
            if on_iteration is not None:
                on_iteration(ids[rows], nit[rows], f_t[rows], None if extra is None else host(pick(extra, index)))
            f_old = f[rows].copy()
            f[rows] = f_t[rows]
            if len(rows) == n:  # every member steps (most rounds): the trial points and gradients become theirs
                x, trial, g_old, g = trial, x, g, g_t
            else:
                g_old = g.index_select(0, index)  # a copy: g is written next
                x[index] = pick(trial, index)
                g[index] = pick(g_t, index)
            largest = host(pick(g_t, index).abs().amax(1))
            reason = np.select(
                [nit[rows] >= max_iter, nfev[rows] > max_fun, largest <= tol,
                 (f_old - f[rows]) <= factr_eps * np.maximum(np.maximum(np.abs(f_old), np.abs(f[rows])), 1.0)],
                [2, 3, 0, 1], -1)
            for code in np.unique(reason[reason >= 0]):
                ending = np.zeros(n, bool)
                ending[rows[reason == code]] = True
                stop(ending, REASONS[code], x, f)
                stopped |= ending
            go_on = reason == -1
            rows, index, g_old = rows[go_on], masked(index, go_on), masked(g_old, go_on)
            if len(rows):
                y = pick(g, index) - g_old
                rr = host(rows_dot(y, y))
                steps = stp_taken[rows]
                at_one = steps == 1.0
                dr = np.where(at_one, gd_t[rows] - gd0[rows], (gd_t[rows] - gd0[rows]) * steps)
                ddum = np.where(at_one, -gd0[rows], -gd0[rows] * steps)
                update = dr > EPS * ddum
                up = rows[update]
                if len(up):  # the new pair goes in now; its products come with the next direction's
                    up_index = masked(index, update)
                    s = d.index_select(0, up_index) * torch.from_numpy(steps[update]).to(device, dtype)[:, None]
                    full = col[up] == m
                    slots = np.where(full, head[up], (head[up] + col[up]) % m)
                    head[up] = np.where(full, (head[up] + 1) % m, head[up])
                    col[up] = np.minimum(col[up] + 1, m)
                    slot_t = torch.from_numpy(slots).to(device)
                    pairs[up_index, slot_t] = s
                    pairs[up_index, slot_t + m] = masked(y, update)
                    theta[up] = rr[update] / dr[update]
                accepted = np.zeros(n, bool)
                accepted[rows] = True
                directions(accepted, up, dr[update])
                failed |= start_searches(accepted)
                going |= accepted

        if failed.any():
            going &= ~failed
            ended = fail_searches(failed)
            restarted = failed & ~ended
            going |= restarted
            if ended.any():
                stop(ended, LINE_SEARCH, x, f)
                stopped |= ended
        trial_points(going & ~stopped)

    return StackResult(final_x, final_f, iterations, evaluations, reasons)
