"""User models via `model.name=module:Name`, and the shape check that runs after every build."""

from __future__ import annotations

import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from distgan.config import ModelConfig
from distgan.errors import ModelError
from distgan.models import GANModels, build_models, has_batch_stats
from distgan.models.checks import FlattenLogits, check_shapes

NETS = "tests.models.custom_nets"


def user(attr: str, module: str = NETS) -> ModelConfig:
    return ModelConfig(name=f"{module}:{attr}", z_dim=4)


def test_tinygan_module_with_own_z_dim_and_flattened_logits() -> None:
    m = build_models(user("TinyGAN"), 3, 16)
    assert m.z_dim == 8  # from the object, not cfg.z_dim=4
    assert isinstance(m.discriminator, FlattenLogits)
    assert has_batch_stats(m.generator) and not has_batch_stats(m.discriminator)
    x = m.generator(torch.randn(5, 8))
    assert x.shape == (5, 3, 16, 16)
    assert m.discriminator(x).shape == (5,)


@pytest.mark.parametrize("attr", ["tuple_pair", "dataclass_pair"])
def test_tuple_and_dataclass_returns(attr: str) -> None:
    m = build_models(user(attr), 1, 8)
    assert m.z_dim == 4
    assert m.discriminator(m.generator(torch.randn(3, 4))).shape == (3,)


@pytest.mark.parametrize(
    "attr,module,pattern",
    [
        (
            "X",
            "tests.models.not_there",
            r"cannot import module 'tests.models.not_there' \(ModuleNotFoundError.*PYTHONPATH",
        ),
        (
            "X",
            "tests.models.broken_nets",
            r"cannot import module 'tests.models.broken_nets'.*distgan_test_missing_dependency.*must be importable",
        ),
        ("Missing", NETS, r"module 'tests.models.custom_nets' has no attribute 'Missing'"),
        ("returns_string", NETS, r"returned str: return an object with .generator and .discriminator"),
        ("no_kwargs", NETS, r"no_kwargs must accept keyword arguments cfg, channels, resolution"),
        ("wrong_resolution", NETS, r"generator output shape is \[2, 3, 8, 8\], expected \[2, 3, 16, 16\]"),
        ("two_logits", NETS, r"discriminator output shape is \[2, 2\] for 2 images, expected \[2\] or \[2, 1\]"),
    ],
)
def test_user_model_errors_are_one_line(attr: str, module: str, pattern: str) -> None:
    with pytest.raises(ModelError, match=pattern) as info:
        build_models(user(attr, module), 3, 16)
    assert "\n" not in str(info.value)


def test_forward_failure_names_the_input_shape() -> None:
    m = build_models(user("TinyGAN"), 3, 16)
    wrong = GANModels(m.generator, m.discriminator, z_dim=4)  # TinyGAN's G takes 8-dim z
    with pytest.raises(ModelError, match=r"generator on z of shape \[2, 4\] failed: RuntimeError: "):
        check_shapes(wrong, 3, 16, "tiny")


def _buffers(models: GANModels) -> dict[str, torch.Tensor]:
    return {
        f"{role}.{k}": v.clone()
        for role, net in (("G", models.generator), ("D", models.discriminator))
        for k, v in net.named_buffers()
    }


@pytest.mark.parametrize(
    "cfg",
    [
        ModelConfig(name="dcgan", z_dim=8, g_width=4, d_width=4, g_norm="batch", d_norm="batch"),
        ModelConfig(name="dcgan", z_dim=8, g_width=4, d_width=4, d_norm="spectral"),
        ModelConfig(name="resnet", z_dim=8, g_width=4, d_width=4),
    ],
)
def test_shape_check_leaves_bn_stats_and_sn_vectors(cfg: ModelConfig) -> None:
    models = build_models(cfg, 3, 16)
    # Move the state away from its initial values, so "unchanged" cannot mean "still at init".
    models.discriminator(models.generator(torch.randn(4, 8)))
    before = _buffers(models)
    assert any(k.endswith("running_mean") for k in before) or any(k.endswith("_u") for k in before)
    check_shapes(models, 3, 16, cfg.name)
    after = _buffers(models)
    assert before.keys() == after.keys()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert all(m.training for net in (models.generator, models.discriminator) for m in net.modules())
    bns = [m for m in models.generator.modules() if isinstance(m, _BatchNorm)]
    assert all(int(bn.num_batches_tracked) == 1 for bn in bns)


def test_shape_check_restores_user_buffers_modes_and_rng() -> None:
    rng = torch.get_rng_state()
    m = build_models(user("stateful_pair"), 1, 8)
    torch.set_rng_state(rng)
    m.generator.train()
    m.generator[0].eval()
    before_rng = torch.get_rng_state()
    check_shapes(m, 1, 8, "stateful")
    assert torch.equal(torch.get_rng_state(), before_rng)
    assert int(m.discriminator.net.calls) == 0  # the check's forward incremented it, then restored it
    m.discriminator(torch.zeros(2, 1, 8, 8))
    assert int(m.discriminator.net.calls) == 1  # still the live buffer, not a detached copy
    assert m.generator.training and m.generator[1].training and not m.generator[0].training
