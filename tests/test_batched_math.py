"""The batched trainer's hand-written backward pass and optimisers against autograd and torch.optim."""

from __future__ import annotations

import pytest
import torch

from nnexp.batched.objective import loss_gradient, row_losses
from nnexp.batched.optim import StackOptimizer
from nnexp.batched.stacked_mlp import ACTIVATION_PAIRS, StackedMLP, with_ones
from nnexp.models.mlp import MLP
from nnexp.models.task import Task
from nnexp.training.optimizers import SGD, Adam

TASKS = {"binary": Task("binary", 1), "multiclass": Task("multiclass", 3), "regression": Task("regression", 2)}


def targets(task: Task, shape: tuple[int, int]) -> torch.Tensor:
    if task.kind == "binary":
        return torch.randint(0, 2, shape).float()
    if task.kind == "multiclass":
        return torch.randint(0, 3, shape)
    return torch.randn(*shape, 2)


def networks(count: int, activation: str, outputs: int, hidden: list[int]) -> list[torch.nn.Module]:
    torch.manual_seed(0)
    return [MLP(input_shape=4, hidden_sizes=hidden, activation=activation, out_features=outputs) for _ in range(count)]


def reference(net: torch.nn.Module, activation: str, x: torch.Tensor, masks: list[torch.Tensor]) -> torch.Tensor:
    """The member's forward pass with autograd, dropping units with the stack's masks (scaled)."""
    layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
    for layer, mask in zip(layers[:-1], masks):
        x = ACTIVATION_PAIRS[activation][0](layer(x)) * mask
    return layers[-1](x)


@pytest.mark.parametrize("activation", sorted(ACTIVATION_PAIRS))
@pytest.mark.parametrize("kind", sorted(TASKS))
# Layers of up to THIN_OUTPUTS units and wider ones take different products (stacked_mlp.THIN_OUTPUTS).
@pytest.mark.parametrize("hidden, dropout", [([6, 5], False), ([6], False), ([6, 5], True), ([12, 5], False), ([5, 12], True)],
                         ids=["two-layers", "one-layer", "dropout", "wide-first", "wide-second"])
def test_backward_matches_autograd_of_each_members_mean_loss(activation, kind, hidden, dropout):
    task, nets = TASKS[kind], networks(3, activation, TASKS[kind].n_outputs, hidden)
    x, y = torch.randn(3, 7, 4), targets(task, (3, 7))
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False  # member 1 has a short (padded) batch
    masks = [torch.ones(3, 7, width) for width in hidden]
    if dropout:
        masks = [torch.bernoulli(torch.full((3, 7, width), 0.7)) / 0.7 for width in hidden]
    stack = StackedMLP(nets, activation, "cpu")
    output, trace = stack.forward(with_ones(x), masks if dropout else None)
    stack.backward(loss_gradient(task, output, y, mask / mask.sum(1, keepdim=True)), trace)
    for m, net in enumerate(nets):
        rows = mask[m]
        expected = reference(net, activation, x[m][rows], [layer_mask[m][rows] for layer_mask in masks])
        # float32 sums in another order: on wide-second/identity both sides are ~1e-6 off float64
        assert torch.allclose(output[m][rows], expected, atol=1e-5)
        task.loss(expected, y[m][rows]).backward()
        layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        for mine, theirs in zip(stack.grad_weights, [layer.weight.grad.T for layer in layers]):
            assert torch.allclose(mine[m], theirs, atol=1e-6)
        for mine, theirs in zip(stack.grad_biases, [layer.bias.grad for layer in layers]):
            assert torch.allclose(mine[m, 0], theirs, atol=1e-6)
        assert row_losses(task, output, y)[m][rows].mean() == pytest.approx(float(task.loss(expected.detach(), y[m][rows])), rel=1e-6, abs=1e-6)


REFERENCE_OPTIMIZERS = {"adam": Adam, "adam_torch": torch.optim.Adam, "sgd": SGD, "sgd_torch": torch.optim.SGD}


@pytest.mark.parametrize(
    "kind, options",
    [("adam", {}), ("adam", {"fused": True}), ("adam_torch", {}), ("adam_torch", {"fused": True}),
     ("sgd", {"momentum": 0.9, "nesterov": True}), ("sgd", {"momentum": 0.9, "nesterov": False}), ("sgd", {"momentum": 0.0, "nesterov": False}),
     ("sgd_torch", {"momentum": 0.9, "nesterov": True}), ("sgd_torch", {"momentum": 0.0})],
)
def test_optimiser_steps_match_the_sequential_optimiser(kind, options):
    """Each batched kind makes the updates of the optimiser class a sequential run of it uses:
    nnexp's scikit-learn Adam and SGD, or torch's own."""
    nets = networks(2, "tanh", 1, [6, 5])
    lr = torch.tensor([0.003, 0.003]) if options.get("fused") else torch.tensor([0.01, 0.003])
    stack = StackedMLP(nets, "tanh", "cpu")
    momentum = torch.full((2,), float(options.get("momentum", 0.0)))
    optimizer = StackOptimizer(stack, kind, lr, momentum, nesterov=options.get("nesterov", False), fused=options.get("fused", False))
    references = [
        REFERENCE_OPTIMIZERS[kind](net.parameters(), lr=float(lr[m]), **options)
        for m, net in enumerate(nets)
    ]
    torch.manual_seed(1)
    for _ in range(4):
        stack.grad.copy_(torch.randn_like(stack.grad))
        for m, (net, reference) in enumerate(zip(nets, references)):
            layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
            for layer, grad_W, grad_b in zip(layers, stack.grad_weights, stack.grad_biases):
                layer.weight.grad, layer.bias.grad = grad_W[m].T.contiguous(), grad_b[m, 0].clone()  # as autograd lays it out
            reference.step()
        optimizer.step()
    for m, net in enumerate(nets):
        layers = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
        for layer, W in zip(layers, stack.weights):
            if options.get("fused"):  # the same kernel: bit for bit
                assert torch.equal(W[m].T, layer.weight)
            else:
                assert torch.allclose(W[m].T, layer.weight, atol=1e-7)


def test_a_member_leaving_takes_its_state_with_it():
    nets = networks(3, "relu", 1, [6, 5])
    stack = StackedMLP(nets, "relu", "cpu")
    optimizer = StackOptimizer(stack, "adam", torch.tensor([0.1, 0.2, 0.3]), torch.zeros(3))
    stack.grad.fill_(1.0)
    optimizer.step()
    before = [W[2].clone() for W in stack.weights]
    keep = torch.tensor([0, 2])
    optimizer.keep(keep)
    stack.keep(keep)
    optimizer.rebind()
    assert stack.M == 2 and optimizer.lr.tolist() == pytest.approx([0.1, 0.3])
    assert all(torch.equal(W[1], saved) for W, saved in zip(stack.weights, before))
    assert optimizer.state["exp_avg"].shape == stack.theta.shape


def test_members_on_the_same_rows_share_one_copy_of_them():
    from nnexp.batched.shared_splits import SharedSplits
    from nnexp.data.splits import TensorSplit

    fold_a = TensorSplit(torch.arange(12.0).view(6, 2), torch.arange(6))
    fold_b = TensorSplit(-torch.arange(8.0).view(4, 2), torch.arange(4))
    splits = SharedSplits([fold_a, fold_a, fold_b, fold_a], "cpu")
    assert splits.X.shape == (2, 6, 2)  # two distinct splits, padded to 6 rows
    X, y = splits.take(splits.rows(torch.tensor([[5, 0], [1, 2], [3, 0], [4, 4]])))
    assert torch.equal(X[0], fold_a.X[[5, 0]]) and torch.equal(X[2], fold_b.X[[3, 0]]) and torch.equal(y[3], fold_a.y[[4, 4]])
    assert splits.row_mask().sum(1).tolist() == [6, 6, 4, 6]


def test_trained_members_come_back_as_ordinary_networks():
    from nnexp.batched.trainer import MemberSpec, StackSpec, train_stack
    from nnexp.data.splits import FitData, TensorSplit

    nets = networks(2, "relu", 1, [6])
    data = FitData(train=TensorSplit(torch.randn(20, 4), torch.randint(0, 2, (20,)).float()))
    members = [MemberSpec(data=data, network=net, seed=0, lr=0.01, alpha=alpha) for net, alpha in zip(nets, (0.0, 1.0))]
    spec = StackSpec(TASKS["binary"], "relu", "adam", batch_size=8, max_epochs=3, monitor=None, patience=1, tol=0.0, restore_best=False)
    before = [layer.weight.clone() for layer in nets[0] if isinstance(layer, torch.nn.Linear)]
    results = train_stack(members, spec)
    assert [len(result.history) for result in results] == [3, 3]
    net = results[0].network  # trained in inference mode, it must still train and change like any network
    after = [layer.weight for layer in net if isinstance(layer, torch.nn.Linear)]
    assert not any(torch.equal(a, b) for a, b in zip(before, after))
    assert not any(p.is_inference() for p in net.parameters())
    net(torch.randn(3, 4)).sum().backward()
    torch.optim.SGD(net.parameters(), lr=0.1).step()


# --- nnexp.batched.lbfgsb: scipy's L-BFGS-B, batched, against scipy itself --------------------------

@pytest.fixture
def one_thread():
    """torch on one thread: these tiny problems' evaluations otherwise wait on spinning workers."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_batched_dcstep_equals_scipys_bit_for_bit():
    import numpy as np
    from scipy.optimize._dcsrch import dcstep as scipy_dcstep

    from nnexp.batched.line_search import dcstep

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(400):  # every case: a higher value, slopes of opposite sign, smaller and larger slopes
        stx, stp = sorted(rng.uniform(0, 3, 2))[:: rng.choice([1, -1])]
        sty = stx + rng.uniform(-2, 2)
        fx, fy, fp = rng.normal(size=3)
        dx = -abs(rng.normal()) * np.sign(stp - stx)
        dy, dp = rng.normal(size=2)
        brackt = bool(rng.integers(2))
        lo, hi = min(stx, sty), max(stx, sty) + 4
        rows.append((stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, lo, hi))
    with np.errstate(all="ignore"):
        expected = np.array([scipy_dcstep(*row) for row in rows], dtype=float)
    columns = [np.array(column) for column in zip(*rows)]
    got = np.stack(dcstep(*columns), axis=1).astype(float)
    np.testing.assert_array_equal(got, expected)


def test_batched_line_searches_take_scipys_dcsrch_steps():
    import numpy as np
    from scipy.optimize._dcsrch import DCSRCH

    from nnexp.batched.line_search import LS_FTOL, LS_GTOL, LS_XTOL, STEP_MAX, LineSearches

    # 1-D functions phi(step) with phi'(0) < 0: a quadratic, a steep well, a nearly flat one and a
    # cubic that needs bracketing from above.
    functions = [(lambda a: (a - 3) ** 2, lambda a: 2 * (a - 3)),
                 (lambda a: np.exp(4 * a) - 40 * a, lambda a: 4 * np.exp(4 * a) - 40),
                 (lambda a: -1e-3 * a + 1e-6 * a ** 2, lambda a: -1e-3 + 2e-6 * a),
                 (lambda a: a ** 3 - 2 * a, lambda a: 3 * a ** 2 - 2)]
    starts = np.array([10.0, 2.0, 1.0, 5.0])
    expected = []
    for (phi, dphi), start in zip(functions, starts):
        search, steps = DCSRCH(phi, dphi, LS_FTOL, LS_GTOL, LS_XTOL, 0.0, STEP_MAX), []
        stp, f, g, task = search._iterate(start, phi(0.0), dphi(0.0), b"START")
        while task[:2] == b"FG" and len(steps) < 20:
            steps.append(stp)
            stp, f, g, task = search._iterate(stp, phi(stp), dphi(stp), task)
        expected.append(steps + [stp])
    searches = LineSearches(len(functions))
    searches.start(np.ones(len(functions), bool), starts, np.array([phi(0.0) for phi, _ in functions]),
                   np.array([dphi(0.0) for _, dphi in functions]))
    stp, taken, finished = starts.copy(), [[] for _ in functions], np.zeros(len(functions), bool)
    while not finished.all():
        values = np.array([phi(s) for (phi, _), s in zip(functions, stp)])
        slopes = np.array([dphi(s) for (_, dphi), s in zip(functions, stp)])
        for i in np.flatnonzero(~finished):
            taken[i].append(stp[i])
        stp, done = searches.iterate(stp, values, slopes)
        finished |= done
    for mine, theirs in zip(taken, expected):
        assert mine == theirs[:-1]
    assert min(map(len, taken)) > 1


def tanh_net_problem(alphas: list[float], device="cpu"):
    """A one-hidden-layer tanh network's penalised logistic loss on 120 noisy XOR-like rows, one
    alpha per member: small alphas run long (ill-conditioned), large ones converge early."""
    members = len(alphas)
    torch.manual_seed(0)
    k, h = 5, 12
    X = torch.randn(120, k, dtype=torch.float64)
    y = (X[:, 0] * X[:, 1] + 0.3 * torch.randn(120, dtype=torch.float64) > 0).double()
    x0 = torch.randn(6, k * h + 2 * h + 1, dtype=torch.float64)[:members] * 0.3
    alphas = torch.tensor(alphas, dtype=torch.float64)

    def losses(w, alpha):  # w (A, P), alpha (A,): (A,)
        W1, b1, W2, b2 = w[:, : k * h].view(-1, k, h), w[:, None, k * h: k * h + h], w[:, k * h + h: -1, None], w[:, -1:]
        out = (torch.tanh(X.to(w.device) @ W1 + b1) @ W2).squeeze(-1) + b2
        penalty = 0.5 * alpha * (W1.square().sum((1, 2)) + W2.square().sum((1, 2))) / len(X)
        data = torch.nn.functional.binary_cross_entropy_with_logits(out, y.to(w.device).expand_as(out), reduction="none")
        return data.mean(1) + penalty

    class Stack:
        def __init__(self):
            self.alphas = alphas.to(device)

        def keep(self, keep):
            self.alphas = self.alphas[keep]

        def __call__(self, points):
            with torch.enable_grad():
                points = points.detach().requires_grad_(True)
                values = losses(points, self.alphas)
                values.sum().backward()
            return values.detach(), points.grad, -values.detach()

    def scipy_run(member: int, start=None, **options):
        import numpy as np
        import scipy.optimize

        def loss_and_grad(w):
            w = torch.from_numpy(w)[None].requires_grad_(True)
            value = losses(w, alphas[member: member + 1])
            value.backward()
            return float(value.detach()), w.grad[0].numpy().copy()

        history = []
        result = scipy.optimize.minimize(loss_and_grad, x0[member].numpy() if start is None else start, jac=True,
                                         method="L-BFGS-B", callback=lambda intermediate_result: history.append(intermediate_result.fun),
                                         options=options)
        return result, np.array(history)

    return Stack(), x0.to(device), scipy_run


def equal_prefix(a, b, rel=1e-10) -> int:
    """How many leading entries of two loss histories agree to ``rel``."""
    n = min(len(a), len(b))
    return next((i for i in range(n) if abs(a[i] - b[i]) > rel * abs(b[i])), n)


@pytest.mark.parametrize("seed", range(3))
def test_two_loop_recursion_as_triangular_solves_equals_the_loops(seed):
    """The directions' coefficients from the pairs' products equal the textbook two-loop recursion
    run on the vectors themselves, for members with full, partial (a wrapped ring) and empty memories."""
    import numpy as np

    from nnexp.batched.lbfgsb import two_loop

    rng = np.random.default_rng(seed)
    members, m, P = 6, 5, 12
    S, g = rng.normal(size=(members, m, P)), rng.normal(size=(members, P))
    curvature = rng.normal(size=(P, P))
    Y = S @ (curvature @ curvature.T / P + np.eye(P))  # s'y > 0, as stored pairs have
    head, cols = np.array([0, 3, 1, 4, 2, 0]), np.array([5, 5, 3, 2, 1, 0])
    theta = rng.uniform(0.5, 2.0, members)
    SY, YY = np.einsum("aip,ajp->aij", S, Y), np.einsum("aip,ajp->aij", Y, Y)
    products = np.concatenate([np.einsum("aip,ap->ai", S, g), np.einsum("aip,ap->ai", Y, g)], axis=1)
    coefficients = two_loop(products, SY, YY, head, cols, theta, m)
    for a in range(members):
        slots = [(head[a] + j) % m for j in range(cols[a])]  # oldest first
        gamma = 1.0 / theta[a] if cols[a] else 1.0
        q, alphas = g[a].copy(), {}
        for slot in reversed(slots):
            alphas[slot] = S[a, slot] @ q / SY[a, slot, slot]
            q -= alphas[slot] * Y[a, slot]
        r = gamma * q
        for slot in slots:
            r += S[a, slot] * (alphas[slot] - Y[a, slot] @ r / SY[a, slot, slot])
        direction = gamma * g[a] + coefficients[a, :m] @ S[a] + coefficients[a, m:] @ Y[a]
        np.testing.assert_allclose(direction, r, rtol=1e-12, atol=1e-12)
        assert not coefficients[a, [slot for slot in range(m) if slot not in slots]].any()


def run_stack(function, x0, **options):
    import numpy as np

    from nnexp.batched.lbfgsb import minimize_stack

    histories = {}

    def on_iteration(members, iterations, losses, extra):
        assert np.array_equal(extra, -losses)  # the function's extra output at the accepted points
        for member, iteration, loss in zip(members, iterations, losses):
            histories.setdefault(int(member), []).append(loss)
            assert len(histories[int(member)]) == iteration

    result = minimize_stack(function, x0, on_iteration=on_iteration, **options)
    return result, histories


def test_batched_lbfgsb_follows_scipy_to_rounding(one_thread):
    """Each member follows its own scipy run: equal losses (to 1e-10) for its first 40 iterations
    at least (measured: 74 and 86 on the two ill-conditioned members, 73 and 83 when the
    two-loop recursion ran as loops; scipy itself, started one ulp away,
    agrees with itself for 49-68), and the whole run (iterations, evaluations, reason, point)
    wherever a one-ulp change of the start does not change scipy's own run."""
    import numpy as np

    function, x0, scipy_run = tanh_net_problem([1e-2, 1, 10, 100])
    result, histories = run_stack(function, x0, max_iter=100, max_fun=15000, tol=1e-5, history_size=10)
    options = dict(maxiter=100, maxfun=15000, gtol=1e-5, maxcor=10)
    stable = 0
    for member in range(4):
        reference, history = scipy_run(member, **options)
        assert equal_prefix(histories[member], history) >= min(40, len(history))
        nudged, nudged_history = scipy_run(member, np.nextafter(x0[member].numpy(), np.inf), **options)
        if (nudged.nit, nudged.nfev) == (reference.nit, reference.nfev) and equal_prefix(nudged_history, history) == len(history):
            # rounding does not decide this run
            stable += 1
            assert (result.iterations[member], result.evaluations[member]) == (reference.nit, reference.nfev)
            assert result.reasons[member] == ("converged" if reference.status == 0 else "max_iter")
            assert equal_prefix(histories[member], history) == len(history)
            np.testing.assert_allclose(result.x[member].numpy(), reference.x, rtol=0, atol=1e-8)
            assert result.loss[member] == pytest.approx(reference.fun, rel=1e-12)
    assert stable >= 2 and result.reasons[0] == "max_iter"


@pytest.mark.parametrize("options, reason", [
    (dict(max_iter=15000, max_fun=12, tol=1e-5), "max_fun"),
    (dict(max_iter=15000, max_fun=15000, tol=0.0, ftol=1e-4), "converged_ftol"),
    (dict(max_iter=7, max_fun=15000, tol=1e-5, history_size=3), "max_iter"),
])
def test_batched_lbfgsb_stops_as_scipy_does(options, reason, one_thread):
    function, x0, scipy_run = tanh_net_problem([0.1, 1, 10])
    result, histories = run_stack(function, x0, **options)
    scipy_options = dict(maxiter=options["max_iter"], maxfun=options["max_fun"], gtol=options["tol"],
                         maxcor=options.get("history_size", 10), ftol=options.get("ftol", 2.2204460492503131e-09))
    for member in range(3):
        reference, history = scipy_run(member, **scipy_options)
        assert result.reasons[member] == reason
        assert (result.iterations[member], result.evaluations[member]) == (reference.nit, reference.nfev)
        assert equal_prefix(histories[member], history) >= min(40, len(history))


def test_failed_line_searches_end_as_scipys_do():
    """A gradient that misleads: the first line search fails (the end, with no pairs to drop), or a
    later one fails, the memory restarts empty, and the next search fails too."""
    import numpy as np
    import scipy.optimize

    from nnexp.batched.lbfgsb import minimize_stack

    targets = torch.from_numpy(np.random.default_rng(1).normal(size=(3, 20)))
    signs = torch.ones(3, 20, dtype=torch.float64)
    signs[0], signs[1:, 10:] = -1, -1  # member 0: the gradient upside down; 1 and 2: half of it
    bias = torch.tensor([[0.01], [0.0], [0.0]], dtype=torch.float64)

    class Misled:
        rows = torch.arange(3)

        def keep(self, keep):
            self.rows = self.rows[keep]

        def __call__(self, points):
            gap = points - targets[self.rows]
            return gap.square().sum(1), 2 * gap * signs[self.rows] + bias[self.rows], None

    result = minimize_stack(Misled(), torch.zeros(3, 20, dtype=torch.float64), max_iter=15000, max_fun=15000, tol=1e-12)
    for member in range(3):
        target, sign, shift = targets[member].numpy(), signs[member].numpy(), float(bias[member])
        reference = scipy.optimize.minimize(lambda w: (np.square(w - target).sum(), 2 * (w - target) * sign + shift),
                                            np.zeros(20), jac=True, method="L-BFGS-B", options=dict(gtol=1e-12))
        assert reference.status == 2 and result.reasons[member] == "line_search_failed"
        assert (result.iterations[member], result.evaluations[member]) == (reference.nit, reference.nfev)
        np.testing.assert_allclose(result.x[member].numpy(), reference.x, rtol=1e-12, atol=1e-15)
    assert 0 in result.iterations and result.iterations.max() == 1  # both ways to fail


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_batched_lbfgsb_on_cuda_follows_its_cpu_run():
    cpu_function, cpu_x0, _ = tanh_net_problem([1e-2, 0.1, 1, 10])
    cuda_function, cuda_x0, _ = tanh_net_problem([1e-2, 0.1, 1, 10], "cuda")
    options = dict(max_iter=60, max_fun=15000, tol=1e-5)
    cpu, cpu_histories = run_stack(cpu_function, cpu_x0, **options)
    cuda, cuda_histories = run_stack(cuda_function, cuda_x0, **options)
    assert cuda.x.device.type == "cuda"
    for member in range(4):
        assert equal_prefix(cuda_histories[member], cpu_histories[member], rel=1e-8) >= 20
