"""MINPACK-2's Moré-Thuente line search (``dcsrch`` and its step ``dcstep``, as
scipy.optimize._dcsrch runs them inside L-BFGS-B) for a vector of independent searches: one per
member of a stack (nnexp.batched.lbfgsb). The state is numpy vectors over the searches; numpy's
element-wise double arithmetic is C's, so each search decides as scipy's own would from the same
values and slopes."""

from __future__ import annotations

import numpy as np

# dcsrch's constants in L-BFGS-B's line search (lnsrlb), and its step bounds without bounds on x.
LS_FTOL, LS_GTOL, LS_XTOL, STEP_MIN, STEP_MAX = 1e-3, 0.9, 0.1, 0.0, 1e10


def dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """MINPACK-2's dcstep (scipy.optimize._dcsrch.dcstep) over vectors of line searches: the
    safeguarded next step and the updated interval, each case computed for all and then picked."""
    with np.errstate(all="ignore"):  # every case is computed for every search; each keeps its own
        return _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax)


def _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    sgnd = np.sign(dp) * np.sign(dx)
    case1 = fp > fx
    case2 = ~case1 & (sgnd < 0)
    case3 = ~case1 & ~case2 & (np.abs(dp) < np.abs(dx))
    # Case 1: a higher function value; the minimum is bracketed.
    theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
    s = np.maximum(np.maximum(np.abs(theta), np.abs(dx)), np.abs(dp))
    gamma = s * np.sqrt((theta / s) ** 2 - (dx / s) * (dp / s))
    gamma1 = np.where(stp < stx, -gamma, gamma)
    r = ((gamma1 - dx) + theta) / (((gamma1 - dx) + gamma1) + dp)
    stpc = stx + r * (stp - stx)
    stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    stpf1 = np.where(np.abs(stpc - stx) <= np.abs(stpq - stx), stpc, stpc + (stpq - stpc) / 2.0)
    # Case 2: derivatives of opposite sign; bracketed.
    gamma2 = np.where(stp > stx, -gamma, gamma)
    r = ((gamma2 - dp) + theta) / (((gamma2 - dp) + gamma2) + dx)
    stpc = stp + r * (stx - stp)
    stpq = stp + (dp / (dp - dx)) * (stx - stp)
    stpf2 = np.where(np.abs(stpc - stp) > np.abs(stpq - stp), stpc, stpq)
    # Case 3: same sign, the derivative's magnitude decreases.
    gamma3 = s * np.sqrt(np.maximum(0, (theta / s) ** 2 - (dx / s) * (dp / s)))
    gamma3 = np.where(stp > stx, -gamma3, gamma3)
    r = ((gamma3 - dp) + theta) / ((gamma3 + (dx - dp)) + gamma3)
    stpc = np.where((r < 0) & (gamma3 != 0), stp + r * (stx - stp), np.where(stp > stx, stpmax, stpmin))
    stpq = stp + (dp / (dp - dx)) * (stx - stp)
    bracketed = np.where(np.abs(stpc - stp) < np.abs(stpq - stp), stpc, stpq)
    bracketed = np.where(stp > stx, np.minimum(stp + 0.66 * (sty - stp), bracketed),
                         np.maximum(stp + 0.66 * (sty - stp), bracketed))
    free = np.clip(np.where(np.abs(stpc - stp) > np.abs(stpq - stp), stpc, stpq), stpmin, stpmax)
    stpf3 = np.where(brackt, bracketed, free)
    # Case 4: same sign, the derivative's magnitude does not decrease.
    theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    s = np.maximum(np.maximum(np.abs(theta), np.abs(dy)), np.abs(dp))
    gamma = s * np.sqrt((theta / s) ** 2 - (dy / s) * (dp / s))
    gamma = np.where(stp > sty, -gamma, gamma)
    r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dy)
    stpf4 = np.where(brackt, stp + r * (sty - stp), np.where(stp > stx, stpmax, stpmin))

    stpf = np.select([case1, case2, case3], [stpf1, stpf2, stpf3], stpf4)
    new_y = case1 | (~case1 & (sgnd < 0))
    y_from = np.where(case1, 1, 0)  # case 1: y takes the trial; else (if new_y) y takes the old x
    sty_n = np.where(new_y, np.where(y_from == 1, stp, stx), sty)
    fy_n = np.where(new_y, np.where(y_from == 1, fp, fx), fy)
    dy_n = np.where(new_y, np.where(y_from == 1, dp, dx), dy)
    stx_n = np.where(case1, stx, stp)
    fx_n = np.where(case1, fx, fp)
    dx_n = np.where(case1, dx, dp)
    return stx_n, fx_n, dx_n, sty_n, fy_n, dy_n, stpf, brackt | case1 | case2
    # (case 4 keeps brackt as it was)


class LineSearches:
    """MINPACK-2's dcsrch (scipy.optimize._dcsrch.DCSRCH._iterate) for a vector of searches."""

    def __init__(self, size: int):
        zeros = np.zeros(size)
        self.brackt = np.zeros(size, bool)
        self.stage = np.ones(size, np.int64)
        for name in ("finit", "ginit", "gtest", "width", "width1", "stx", "fx", "gx", "sty", "fy", "gy", "stmin", "stmax"):
            setattr(self, name, zeros.copy())

    FIELDS = ("brackt", "stage", "finit", "ginit", "gtest", "width", "width1", "stx", "fx", "gx", "sty", "fy", "gy", "stmin", "stmax")

    def take(self, keep: np.ndarray) -> None:
        for name in self.FIELDS:
            setattr(self, name, getattr(self, name)[keep])

    def start(self, which: np.ndarray, stp: np.ndarray, f: np.ndarray, g: np.ndarray) -> None:
        """Start searches ``which`` (a boolean mask) at step ``stp`` from value ``f`` and slope ``g`` (< 0)."""
        self.brackt[which] = False
        self.stage[which] = 1
        self.finit[which] = f
        self.ginit[which] = g
        self.gtest[which] = LS_FTOL * g
        self.width[which] = STEP_MAX - STEP_MIN
        self.width1[which] = (STEP_MAX - STEP_MIN) / 0.5
        self.stx[which] = 0.0
        self.fx[which] = f
        self.gx[which] = g
        self.sty[which] = 0.0
        self.fy[which] = f
        self.gy[which] = g
        self.stmin[which] = 0.0
        self.stmax[which] = stp + 4.0 * stp

    def iterate(self, stp: np.ndarray, f: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every search's verdict on value ``f`` and slope ``g`` at ``stp``: (the next step, done),
        done where dcsrch answers CONVERGENCE or a WARNING (L-BFGS-B accepts the step either way)."""
        ftest = self.finit + stp * self.gtest
        self.stage = np.where((self.stage == 1) & (f <= ftest) & (g >= 0), 2, self.stage)
        brackt = self.brackt
        done = ((brackt & ((stp <= self.stmin) | (stp >= self.stmax)))
                | (brackt & (self.stmax - self.stmin <= LS_XTOL * self.stmax))
                | ((stp == STEP_MAX) & (f <= ftest) & (g <= self.gtest))
                | ((stp == STEP_MIN) & ((f > ftest) | (g >= self.gtest)))
                | ((f <= ftest) & (np.abs(g) <= LS_GTOL * -self.ginit)))
        go = ~done
        if not go.any():  # every search accepts its step (most rounds of L-BFGS): no next step to take
            return stp, done
        modified = go & (self.stage == 1) & (f <= self.fx) & (f > ftest)
        gtest = self.gtest
        inputs = (self.stx, np.where(modified, self.fx - self.stx * gtest, self.fx), np.where(modified, self.gx - gtest, self.gx),
                  self.sty, np.where(modified, self.fy - self.sty * gtest, self.fy), np.where(modified, self.gy - gtest, self.gy),
                  stp, np.where(modified, f - stp * gtest, f), np.where(modified, g - gtest, g))
        stx, fx, gx, sty, fy, gy, new_stp, new_brackt = dcstep(*inputs, brackt, self.stmin, self.stmax)
        fx = np.where(modified, fx + stx * gtest, fx)
        fy = np.where(modified, fy + sty * gtest, fy)
        gx = np.where(modified, gx + gtest, gx)
        gy = np.where(modified, gy + gtest, gy)
        bisect = new_brackt & (np.abs(sty - stx) >= 0.66 * self.width1)
        new_stp = np.where(bisect, stx + 0.5 * (sty - stx), new_stp)
        width1 = np.where(new_brackt, self.width, self.width1)
        width = np.where(new_brackt, np.abs(sty - stx), self.width)
        stmin = np.where(new_brackt, np.minimum(stx, sty), new_stp + 1.1 * (new_stp - stx))
        stmax = np.where(new_brackt, np.maximum(stx, sty), new_stp + 4.0 * (new_stp - stx))
        new_stp = np.clip(new_stp, STEP_MIN, STEP_MAX)
        back = new_brackt & ((new_stp <= stmin) | (new_stp >= stmax) | (stmax - stmin <= LS_XTOL * stmax))
        new_stp = np.where(back, stx, new_stp)
        for name, value in (("stx", stx), ("fx", fx), ("gx", gx), ("sty", sty), ("fy", fy), ("gy", gy), ("brackt", new_brackt),
                            ("width", width), ("width1", width1), ("stmin", stmin), ("stmax", stmax)):
            setattr(self, name, np.where(go, value, getattr(self, name)))
        return np.where(go, new_stp, stp), done
