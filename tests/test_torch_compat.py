"""nnexp.torch_compat: torch's private fast paths give what their public fallbacks give."""

from __future__ import annotations

import pytest
import torch

from nnexp import torch_compat


@pytest.fixture(params=["private", "public fallback"])
def path(request, monkeypatch):
    """Each test runs on torch's private functions and again as on a torch without them."""
    if request.param == "public fallback":
        monkeypatch.setattr(torch_compat, "_private", lambda dotted: None)
    else:
        for name in ("_foreach_norm", "_foreach_add_", "_foreach_mul_", "_foreach_div_", "_foreach_mul", "_foreach_sign",
                     "_utils._flatten_dense_tensors", "_fused_adam_"):
            assert torch_compat._private(name) is not None, name  # this torch has them: the fast path is tested
    return request.param


def tensors(seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=generator) for shape in ((3, 4), (4,), (2, 2, 2))]


def test_foreach_norms(path):
    weights = tensors()
    for ord in (2, 1):
        expected = [torch.linalg.vector_norm(w, ord) for w in weights]
        assert all(torch.allclose(a, b) for a, b in zip(torch_compat.foreach_norm(weights, ord), expected))


def test_foreach_updates(path):
    targets, others = tensors(0), tensors(1)
    expected = [t + 0.5 * o for t, o in zip(targets, others)]
    torch_compat.foreach_add_(targets, others, alpha=0.5)
    assert all(torch.equal(a, b) for a, b in zip(targets, expected))
    torch_compat.foreach_mul_(targets, 2.0)
    assert all(torch.equal(a, 2.0 * b) for a, b in zip(targets, expected))
    assert all(torch.equal(a, 3.0 * b) for a, b in zip(torch_compat.foreach_mul(targets, 1.5), expected))
    torch_compat.foreach_div_(targets, 3.0)
    assert all(torch.equal(a, (2.0 * b) / 3.0) for a, b in zip(targets, expected))  # divided, as div_ rounds
    assert all(torch.equal(a, b.sign()) for a, b in zip(torch_compat.foreach_sign(others), others))


def test_flatten_and_unflatten(path):
    grads = tensors()
    flat = torch_compat.flatten_dense_tensors(grads)
    assert flat.shape == (sum(g.numel() for g in grads),)
    assert all(torch.equal(a, b) for a, b in zip(torch_compat.unflatten_dense_tensors(flat, grads), grads))


def test_cpu_bf16_probe_answers(path):
    assert isinstance(torch_compat.cpu_has_native_bf16(), bool)


def test_fused_adam_is_torchs_fused_adam_bit_for_bit(path):
    """Private kernel or public functional Adam: the same step as torch.optim.Adam(fused=True)."""
    theta, grad = tensors(0)[0], tensors(1)[0]
    reference = theta.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([reference], lr=0.01, eps=1e-8, fused=True)
    exp_avg, exp_avg_sq, step = torch.zeros_like(theta), torch.zeros_like(theta), torch.zeros(())
    for t in range(1, 4):
        reference.grad = grad * t
        optimizer.step()
        step.fill_(float(t))
        assert torch_compat.fused_adam_([theta], [grad * t], [exp_avg], [exp_avg_sq], [step], lr=0.01, beta1=0.9,
                                        beta2=0.999, eps=1e-8)
    assert torch.equal(theta, reference.detach())
