"""k2 = ½(log π − log π_ref)² in the loss gives the gradient of the reverse KL(π‖π_ref) (NOTES-RL §10.7)."""

import torch

from envgym.agents.objective import policy_loss_sum


def _expected_k2_grad(theta: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """On-policy expectation over y ~ π (weights detached, as when sampling) of ∇ k2(y), via the loss code."""
    theta = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(theta, -1)
    weights = logp.exp().detach()
    total = torch.zeros(())
    for y in range(theta.numel()):
        one = logp[y].reshape(1, 1)
        mask = torch.ones(1, 1, dtype=torch.bool)
        loss, _ = policy_loss_sum(
            one, one.detach(), torch.zeros(1, 1), mask, ref_logp=ref_logp[y].reshape(1, 1), kl_beta=1.0
        )
        total = total + weights[y] * loss
    total.backward()
    assert theta.grad is not None
    return theta.grad


def test_k2_gradient_equals_reverse_kl_gradient():
    torch.manual_seed(0)
    theta = torch.randn(5, dtype=torch.float64).float()
    ref_logp = torch.log_softmax(torch.randn(5), -1)
    got = _expected_k2_grad(theta, ref_logp)
    # analytic reverse KL: KL(π‖ref) = Σ π (log π − log ref); autograd of the exact sum
    t = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(t, -1)
    kl = (logp.exp() * (logp - ref_logp)).sum()
    kl.backward()
    assert t.grad is not None
    assert torch.allclose(got, t.grad, atol=1e-6)
    # and the closed form π ⊙ (d − KL), d = log π − log ref
    p = torch.softmax(theta, -1)
    d = torch.log_softmax(theta, -1) - ref_logp
    assert torch.allclose(got, p * (d - (p * d).sum()), atol=1e-6)


def test_k3_in_the_loss_would_not_match():
    """Guard the test itself: the k3 estimator's gradient is the forward KL's, which differs."""
    torch.manual_seed(1)
    theta = torch.randn(5)
    ref_logp = torch.log_softmax(torch.randn(5), -1)
    t = theta.clone().requires_grad_(True)
    logp = torch.log_softmax(t, -1)
    w = logp.exp().detach()
    k3 = torch.exp(ref_logp - logp) - (ref_logp - logp) - 1
    (w * k3).sum().backward()
    assert t.grad is not None
    assert not torch.allclose(t.grad, _expected_k2_grad(theta, ref_logp), atol=1e-4)
