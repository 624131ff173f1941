"""GlobalBatchNorm (the CPU/gloo sync BN) against torch's BatchNorm in one process."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from distgan.models.sync_bn import GlobalBatchNorm, convert_sync_batchnorm


@pytest.mark.parametrize("dims", [1, 2])
def test_matches_torch_batchnorm_in_one_process(dims: int):
    torch.manual_seed(0)
    ref = nn.BatchNorm2d(5) if dims == 2 else nn.BatchNorm1d(5)
    with torch.no_grad():
        ref.weight.uniform_(0.5, 1.5)
        ref.bias.uniform_(-0.5, 0.5)
    ours = convert_sync_batchnorm(nn.Sequential(ref), torch.device("cpu"))[0]
    assert isinstance(ours, GlobalBatchNorm)
    ref = nn.Sequential(nn.BatchNorm2d(5) if dims == 2 else nn.BatchNorm1d(5))[0]
    ref.load_state_dict(ours.state_dict())
    for _ in range(3):  # running statistics accumulate over steps
        x = torch.randn(8, 5, 4, 4) * 3 + 2 if dims == 2 else torch.randn(8, 5) * 3 + 2
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ref(xa), ours(xb)
        torch.testing.assert_close(yb, ya, atol=1e-5, rtol=1e-5)
        upstream = torch.randn_like(ya)
        ya.backward(upstream)
        yb.backward(upstream)
        torch.testing.assert_close(xb.grad, xa.grad, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(ours.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(ours.bias.grad, ref.bias.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert int(ours.num_batches_tracked) == int(ref.num_batches_tracked) == 3
    ours.eval()
    ref.eval()
    torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=1e-5)


def test_conversion_keeps_weights_and_nested_layers():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()))
    with torch.no_grad():
        net[1][0].weight.fill_(2.0)
        net[1][0].running_mean.fill_(0.25)
    converted = convert_sync_batchnorm(net, torch.device("cpu"))
    layer = converted[1][0]
    assert isinstance(layer, GlobalBatchNorm)
    assert torch.equal(layer.weight, torch.full((4,), 2.0))
    assert torch.equal(layer.running_mean, torch.full((4,), 0.25))
