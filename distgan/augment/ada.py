"""The ADA pipeline (Karras et al. 2020, StyleGAN2-ADA's training/augment.py, 'bgc' plus cutout).

Each transform is applied to each sample with probability p, in ADA's order: the geometric
ones (x-flip, 90-degree rotation, integer translation, isotropic scaling, rotation,
anisotropic scaling, rotation, fractional translation) composed into one affine map and
sampled once (bilinear, reflection padding), then the color ones (brightness, contrast, and
for RGB luma flip, hue rotation about the luma axis and saturation) as one 4x4 matrix, then
cutout. Everything is differentiable in the images, twice (R1 through the augmentation).
A sample no transform was drawn for is returned unchanged, bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

# Strengths of StyleGAN2-ADA's defaults.
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0
CUTOUT_SIZE = 0.5

# Columns of the per-sample uniforms: (name, how many), each transform's gate first.
LAYOUT = (
    ("xflip", 2), ("rotate90", 2), ("xint", 3), ("scale", 2), ("rotate_pre", 2), ("aniso", 2),
    ("rotate_post", 2), ("xfrac", 3), ("brightness", 2), ("contrast", 2), ("lumaflip", 2), ("hue", 2),
    ("saturation", 2), ("cutout", 3),
)  # fmt: skip
COLUMNS: dict[str, int] = {}
for _name, _width in LAYOUT:
    COLUMNS[_name] = sum(w for _, w in LAYOUT[: len(COLUMNS)])


def _normal(u: Tensor) -> Tensor:
    """Standard normal variates from uniforms (inverse CDF): every draw stays a uniform of the global stream."""
    return torch.special.ndtri(u.clamp(1e-7, 1 - 1e-7))


def _matrix(rows: list[list[Tensor | float]], like: Tensor) -> Tensor:
    """[N, k, k] from per-sample entries (tensors [N] or constants)."""
    n = like.shape[0]
    # Constants as fills on the device, not copies from the host.
    cols = [e if isinstance(e, Tensor) else like.new_full((n,), float(e)) for row in rows for e in row]
    return torch.stack(cols, dim=1).view(n, len(rows), len(rows))


def _translate(tx: Tensor, ty: Tensor) -> Tensor:
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], tx)


def _scale(sx: Tensor, sy: Tensor) -> Tensor:
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], sx)


def _rotate(theta: Tensor) -> Tensor:
    c, s = theta.cos(), theta.sin()
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], theta)


class AdaPipeline:
    num_params = sum(width for _, width in LAYOUT)

    def __call__(self, x: Tensor, u: Tensor, p: float) -> Tensor:
        """`x` [N, C, H, W] in [-1, 1], `u` [N, num_params] uniforms in [0, 1), p the probability of each transform."""
        if p <= 0:
            return x
        u = u.to(torch.float32)
        x = self.geometric(x, u, p)
        x = self.color(x, u, p)
        return self.cutout(x, u, p)

    @staticmethod
    def _gate(u: Tensor, name: str, p: float) -> tuple[Tensor, Tensor]:
        """Whether the transform is drawn for each sample, and its parameter columns."""
        col = COLUMNS[name]
        width = dict(LAYOUT)[name]
        return u[:, col] < p, u[:, col + 1 : col + width]

    def geometric(self, x: Tensor, u: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        # Inverse maps (output coordinates -> input coordinates) in grid_sample's [-1, 1] frame.
        inv = torch.eye(3, device=x.device).expand(n, 3, 3)
        drawn = torch.zeros(n, dtype=torch.bool, device=x.device)
        one = torch.ones(n, device=x.device)

        def compose(name: str, make, probability: float = p) -> None:
            nonlocal inv, drawn
            on, params = self._gate(u, name, probability)
            inv = inv @ torch.where(on[:, None, None], make(params), torch.eye(3, device=x.device))
            drawn = drawn | on

        compose("xflip", lambda q: _scale(1 - 2 * (q[:, 0] * 2).floor().clamp(max=1), one))
        compose("rotate90", lambda q: _rotate(-math.pi / 2 * (q[:, 0] * 4).floor().clamp(max=3)))
        # Whole pixels: a shift of k pixels is 2k / size in the [-1, 1] frame.
        compose(
            "xint",
            lambda q: _translate(
                -torch.round((q[:, 0] * 2 - 1) * XINT_MAX * w) * 2 / w,
                -torch.round((q[:, 1] * 2 - 1) * XINT_MAX * h) * 2 / h,
            ),
        )
        compose("scale", lambda q: _scale(*(torch.exp2(-_normal(q[:, 0]) * SCALE_STD),) * 2))
        # ADA rotates twice with probability 1 - sqrt(1 - p) each, so that some rotation happens with p.
        p_rotate = 1 - math.sqrt(max(1 - p, 0.0))
        rotate = lambda q: _rotate((q[:, 0] * 2 - 1) * math.pi * ROTATE_MAX)  # noqa: E731
        compose("rotate_pre", rotate, p_rotate)
        compose(
            "aniso",
            lambda q: _scale(torch.exp2(-_normal(q[:, 0]) * ANISO_STD), torch.exp2(_normal(q[:, 0]) * ANISO_STD)),
        )
        compose("rotate_post", rotate, p_rotate)
        compose("xfrac", lambda q: _translate(-_normal(q[:, 0]) * XFRAC_STD * 2, -_normal(q[:, 1]) * XFRAC_STD * 2))
        grid = F.affine_grid(inv[:, :2].to(x.dtype), list(x.shape), align_corners=False)
        warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        return torch.where(drawn[:, None, None, None], warped, x)

    def color(self, x: Tensor, u: Tensor, p: float) -> Tensor:
        n, channels = x.shape[:2]
        eye = torch.eye(4, device=x.device)
        mat = eye.expand(n, 4, 4)
        drawn = torch.zeros(n, dtype=torch.bool, device=x.device)
        luma = F.pad(torch.full((3,), 1 / math.sqrt(3), device=x.device), (0, 1))
        luma_outer = torch.outer(luma, luma)

        def compose(name: str, make) -> None:
            nonlocal mat, drawn
            on, params = self._gate(u, name, p)
            mat = torch.where(on[:, None, None], make(params[:, 0]), eye) @ mat
            drawn = drawn | on

        def brightness(q: Tensor) -> Tensor:
            shift = (_normal(q) * BRIGHTNESS_STD)[:, None]
            return eye + F.pad(shift.expand(n, 3), (0, 1))[:, :, None] * eye[3]

        def contrast(q: Tensor) -> Tensor:
            c = torch.exp2(_normal(q) * CONTRAST_STD)
            return torch.diag_embed(torch.stack([c, c, c, torch.ones_like(c)], dim=1))

        compose("brightness", brightness)
        compose("contrast", contrast)
        if channels == 3:  # luma flip, hue and saturation need color
            compose("lumaflip", lambda q: eye - 2 * luma_outer * (q * 2).floor().clamp(max=1)[:, None, None])
            compose("hue", lambda q: _rotate_about_luma((q * 2 - 1) * math.pi * HUE_MAX))
            compose(
                "saturation",
                lambda q: luma_outer + (eye - luma_outer) * torch.exp2(_normal(q) * SATURATION_STD)[:, None, None],
            )
        mat = mat.to(x.dtype)
        if channels == 3:
            out = torch.einsum("nij,njhw->nihw", mat[:, :3, :3], x) + mat[:, :3, 3, None, None]
        else:  # brightness and contrast act on every channel alike
            out = x * mat[:, 0, 0, None, None, None] + mat[:, 0, 3, None, None, None]
        return torch.where(drawn[:, None, None, None], out, x)

    def cutout(self, x: Tensor, u: Tensor, p: float) -> Tensor:
        n, _, h, w = x.shape
        on, centre = self._gate(u, "cutout", p)
        ys = (torch.arange(h, device=x.device) + 0.5) / h
        xs = (torch.arange(w, device=x.device) + 0.5) / w
        outside_y = (ys[None] - centre[:, 1:2]).abs() >= CUTOUT_SIZE / 2
        outside_x = (xs[None] - centre[:, 0:1]).abs() >= CUTOUT_SIZE / 2
        keep = outside_y[:, :, None] | outside_x[:, None, :] | ~on[:, None, None]
        return x * keep[:, None].to(x.dtype)


def _rotate_about_luma(theta: Tensor) -> Tensor:
    """[N, 4, 4] rotations by `theta` about the gray axis (1, 1, 1) / sqrt(3) (Rodrigues)."""
    a = 1 / math.sqrt(3)
    cycle = torch.eye(3, device=theta.device).roll(1, dims=1)
    cross = (cycle.T - cycle) * a  # the cross-product matrix of the axis
    c, s = theta.cos()[:, None, None], theta.sin()[:, None, None]
    rot = c * torch.eye(3, device=theta.device) + s * cross + (1 - c) * torch.full((3, 3), a * a, device=theta.device)
    return F.pad(rot, (0, 1, 0, 1)) + F.pad(torch.ones(1, 1, device=theta.device), (3, 0, 3, 0))
