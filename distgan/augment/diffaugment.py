"""DiffAugment (Zhao et al. 2020): color, translation and cutout on every image D sees.

The transforms are differentiable in the images (translation and cutout gather and mask
pixels), so G's gradient passes through them, and R1 differentiates D(augment(x)) with
respect to the un-augmented x. Every random number comes from `u`, this process's rows of
a draw over the global batch, so a sample is augmented alike on any number of processes.
"""

from __future__ import annotations

import torch
from torch import Tensor

POLICIES = ("color", "translation", "cutout")
# Columns of `u`: fixed whatever the policy, so turning one transform off leaves the others' draws alone.
BRIGHTNESS, SATURATION, CONTRAST, SHIFT_X, SHIFT_Y, CUT_X, CUT_Y = range(7)
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def integers(u: Tensor, low: int, high: int) -> Tensor:
    """`u` in [0, 1) to integers in [low, high), as torch.randint would draw them."""
    return (low + (u * (high - low)).floor().long()).clamp(max=high - 1)


class DiffAugment:
    num_params = 7

    def __init__(self, policy: str = "color,translation,cutout") -> None:
        self.policy = [name.strip() for name in policy.split(",") if name.strip()]

    def __call__(self, x: Tensor, u: Tensor, p: float = 1.0) -> Tensor:
        """`x` [N, C, H, W], `u` [N, num_params] uniforms in [0, 1). DiffAugment has no p: it always applies."""
        for name in self.policy:
            x = getattr(self, name)(x, u)
        return x

    @staticmethod
    def color(x: Tensor, u: Tensor) -> Tensor:
        col = lambda i: u[:, i].to(x.dtype).view(-1, 1, 1, 1)  # noqa: E731
        x = x + (col(BRIGHTNESS) - 0.5)
        if x.shape[1] > 1:  # one channel: the channel mean is the image, saturation changes nothing
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (col(SATURATION) * 2) + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (col(CONTRAST) + 0.5) + mean

    @staticmethod
    def translation(x: Tensor, u: Tensor) -> Tensor:
        """Shift by up to 1/8 of the size in each direction, zero filled."""
        n, c, h, w = x.shape
        sh, sw = int(h * TRANSLATION_RATIO + 0.5), int(w * TRANSLATION_RATIO + 0.5)
        dy, dx = integers(u[:, SHIFT_Y], -sh, sh + 1), integers(u[:, SHIFT_X], -sw, sw + 1)
        padded = torch.nn.functional.pad(x, [sw, sw, sh, sh])
        rows = (torch.arange(h, device=x.device) + sh + dy[:, None]).view(n, 1, h, 1)
        x = padded.gather(2, rows.expand(n, c, h, w + 2 * sw))
        cols = (torch.arange(w, device=x.device) + sw + dx[:, None]).view(n, 1, 1, w)
        return x.gather(3, cols.expand(n, c, h, w))

    @staticmethod
    def cutout(x: Tensor, u: Tensor) -> Tensor:
        """Zero one square of half the size, centred anywhere (clipped at the borders)."""
        n, _, h, w = x.shape
        ch, cw = int(h * CUTOUT_RATIO + 0.5), int(w * CUTOUT_RATIO + 0.5)
        top = integers(u[:, CUT_Y], 0, h + (1 - ch % 2)) - ch // 2
        left = integers(u[:, CUT_X], 0, w + (1 - cw % 2)) - cw // 2
        rows, cols = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
        inside_r = (rows >= top[:, None]) & (rows < top[:, None] + ch)
        inside_c = (cols >= left[:, None]) & (cols < left[:, None] + cw)
        keep = ~(inside_r[:, :, None] & inside_c[:, None, :])
        return x * keep[:, None].to(x.dtype)
