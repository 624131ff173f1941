"""`model.sync_bn`: batch statistics over the GLOBAL batch, so BatchNorm nets do not depend on the world size.

On CUDA this is torch's SyncBatchNorm. torch's refuses CPU tensors, so on CPU (gloo) distgan
uses `GlobalBatchNorm`: the same statistics from two differentiable all-reduces (the sum,
then the centred sum of squares). It computes in one process exactly what it computes in
N, which is what the equivalence tests compare.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_fn
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


def _all_reduce_sum(t: Tensor) -> Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist_fn.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


class GlobalBatchNorm(_BatchNorm):
    """BatchNorm over the samples of all ranks; any number of spatial dims."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"GlobalBatchNorm expects [N, C, ...] input, got shape {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not self.training and self.track_running_stats:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        xf = x.float()
        count = _all_reduce_sum(torch.tensor([x.numel() / x.shape[1]], device=x.device, dtype=torch.float32))
        mean = _all_reduce_sum(xf.sum(dims)) / count
        centred = xf - mean.reshape(shape)
        var = _all_reduce_sum(centred.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked + 1)
                self.num_batches_tracked.add_(1)
                unbiased = var.detach() * (count / (count - 1).clamp_min(1))
                self.running_mean.lerp_(mean.detach().to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        y = centred * torch.rsqrt(var + self.eps).reshape(shape)
        if self.affine:
            y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replaces every BatchNorm layer; weights and running statistics are carried over."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    return _convert_to_global(module)


def _convert_to_global(module: nn.Module) -> nn.Module:
    if isinstance(module, _BatchNorm) and not isinstance(module, GlobalBatchNorm):
        new = GlobalBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, _convert_to_global(child))
    return module
