"""Built-in networks: shapes, ranges, widths, gradients, norms. CPU, small widths unless a preset is checked."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from distgan.config import ModelConfig
from distgan.errors import ModelError
from distgan.models import GANModels, build_models, has_batch_stats, registered_models
from distgan.models.dcgan import _stage_widths
from distgan.models.resnet import DBlock

CASES = [
    ("mlp", 28, 1),
    ("mlp", 32, 3),
    ("dcgan", 16, 1),
    ("dcgan", 32, 3),
    ("dcgan", 64, 1),
    ("dcgan", 64, 3),
    ("resnet", 8, 1),
    ("resnet", 32, 3),
]


def small(name: str, **kw) -> ModelConfig:
    return ModelConfig(name=name, **{"z_dim": 16, "g_width": 8, "d_width": 8, **kw})


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_builtins() -> None:
    assert registered_models() == ["dcgan", "mlp", "r3gan", "resnet"]


@pytest.mark.parametrize("name,res,ch", CASES)
def test_shapes_range_and_gradients(name: str, res: int, ch: int) -> None:
    torch.manual_seed(0)
    models = build_models(small(name), ch, res)
    assert isinstance(models, GANModels) and models.z_dim == 16
    G, D = models.generator, models.discriminator
    assert G.training and D.training
    x = G(torch.randn(4, 16))
    assert x.shape == (4, ch, res, res)
    assert x.min() >= -1 and x.max() <= 1
    logits = D(x)
    assert logits.shape == (4,) and logits.dtype == torch.float32
    logits.square().mean().backward()
    for net in (G, D):
        for pname, p in net.named_parameters():
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname
    # channels_last inputs (a common GPU setting) must not break flatten/reshape paths.
    assert D(x.detach().contiguous(memory_format=torch.channels_last)).shape == (4,)


def test_mlp_layer_widths_and_one_logit() -> None:
    m = build_models(ModelConfig(name="mlp", z_dim=100), 1, 28)
    g = [layer.out_features for layer in m.generator.modules() if isinstance(layer, nn.Linear)]
    d = [layer.out_features for layer in m.discriminator.modules() if isinstance(layer, nn.Linear)]
    assert g == [128, 128, 1024, 1024, 784]
    assert d == [1024, 1024, 1]
    assert next(layer for layer in m.generator.modules() if isinstance(layer, nn.Linear)).in_features == 100
    assert m.discriminator(torch.zeros(5, 1, 28, 28)).shape == (5,)


def test_dcgan_widths_cap_at_eight_times() -> None:
    assert _stage_widths(32, 32) == [128, 64, 32]
    assert _stage_widths(8, 128) == [64, 64, 32, 16, 8]
    m = build_models(small("dcgan"), 3, 128)
    convs = [layer for layer in m.discriminator.modules() if isinstance(layer, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64, 64, 1]


def test_preset_parameter_counts() -> None:
    # Hand-checked from the layer shapes; a change here changes every preset's capacity.
    mnist = build_models(ModelConfig(name="dcgan", z_dim=64, g_width=32, d_width=32, d_norm="none"), 1, 32)
    assert (n_params(mnist.generator), n_params(mnist.discriminator)) == (295_873, 166_624)
    cifar = build_models(ModelConfig(name="dcgan", z_dim=128, g_width=64, d_width=64, d_norm="spectral"), 3, 32)
    assert (n_params(cifar.generator), n_params(cifar.discriminator)) == (1_183_619, 662_976)
    sngan = build_models(ModelConfig(name="resnet", z_dim=128, g_width=256, d_width=128), 3, 32)
    # Mimicry reports about 4.3M / 1.0M for its CIFAR SNGAN.
    assert (n_params(sngan.generator), n_params(sngan.discriminator)) == (4_276_739, 1_053_825)


def _convs_and_linears(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def test_spectral_norm_on_every_d_layer() -> None:
    for cfg in (small("dcgan", d_norm="spectral"), small("resnet"), small("resnet", d_norm="none")):
        layers = _convs_and_linears(build_models(cfg, 3, 32).discriminator)
        assert layers and all(parametrize.is_parametrized(layer, "weight") for layer in layers), cfg
    plain = _convs_and_linears(build_models(small("dcgan", d_norm="none"), 3, 32).discriminator)
    assert not any(parametrize.is_parametrized(layer) for layer in plain)


def test_resnet_d_matches_sngan_cifar_layout() -> None:
    blocks = [b for b in build_models(small("resnet"), 3, 32).discriminator if isinstance(b, DBlock)]
    downs = [any(isinstance(layer, nn.AvgPool2d) for layer in b.residual) for b in blocks]
    assert downs == [True, True, False, False]
    assert [isinstance(b.shortcut, nn.Identity) for b in blocks] == [False, False, True, True]


@pytest.mark.parametrize(
    "cfg,g,d",
    [
        (small("dcgan", g_norm="batch", d_norm="batch"), True, True),
        (small("dcgan", g_norm="none", d_norm="none"), False, False),
        (small("dcgan", g_norm="batch", d_norm="spectral"), True, False),
        (small("resnet", g_norm="batch", d_norm="batch"), True, False),  # resnet D ignores d_norm
        (small("resnet", g_norm="none"), False, False),
        (small("mlp", g_norm="batch", d_norm="batch"), False, False),  # mlp ignores norms
    ],
)
def test_has_batch_stats(cfg: ModelConfig, g: bool, d: bool) -> None:
    m = build_models(cfg, 1, 16)
    assert (has_batch_stats(m.generator), has_batch_stats(m.discriminator)) == (g, d)


@pytest.mark.parametrize("name,res", [("dcgan", 8), ("dcgan", 24), ("resnet", 4), ("resnet", 12)])
def test_bad_resolution(name: str, res: int) -> None:
    with pytest.raises(ModelError, match=f"model {name} cannot use resolution {res}: use a power of two"):
        build_models(small(name), 3, res)


def test_unknown_name_and_stray_kwargs() -> None:
    with pytest.raises(ModelError, match="unknown model.name='vae': use one of dcgan, mlp, r3gan, resnet"):
        build_models(ModelConfig(name="vae"), 3, 32)
    with pytest.raises(ModelError, match=r"model.kwargs \['depth'\] are not used by model dcgan"):
        build_models(small("dcgan", kwargs={"depth": 3}), 3, 32)


@pytest.mark.parametrize("name", ["mlp", "dcgan", "resnet", "r3gan"])
@pytest.mark.parametrize("num_classes", [0, 3])
def test_a_seeds_generator_does_not_depend_on_the_discriminators_config(name: str, num_classes: int) -> None:
    # G is drawn first: a D ablation starts from the same G, and a seed keeps its G across releases.
    def initial_g(d_width: int, d_norm: str) -> dict[str, torch.Tensor]:
        torch.manual_seed(7)
        models = build_models(small(name, d_width=d_width, d_norm=d_norm), 1, 16, num_classes=num_classes)
        return models.generator.state_dict()

    reference, other = initial_g(8, "spectral"), initial_g(16, "none")
    assert reference.keys() == other.keys()
    for key in reference:
        assert torch.equal(reference[key], other[key]), f"{name}: G's {key} changed with D's config"
