"""Class-conditional built-in networks: the class reaches both networks and trains."""

from __future__ import annotations

import pytest
import torch

from distgan.config import load_config
from distgan.errors import ModelError
from distgan.models import build_models

MODELS = [("mlp", 16), ("dcgan", 16), ("resnet", 8), ("r3gan", 8)]


def _config(name: str, resolution: int, *extra: str):
    return load_config(
        None, [f"model.name={name}", f"data.resolution={resolution}", "model.g_width=8", "model.d_width=8", *extra]
    ).model


@pytest.mark.parametrize(("name", "resolution"), MODELS)
def test_the_class_changes_both_networks_outputs(name: str, resolution: int):
    torch.manual_seed(0)
    models = build_models(_config(name, resolution), channels=3, resolution=resolution, num_classes=5)
    assert models.num_classes == 5
    G, D = models.generator.eval(), models.discriminator.eval()
    z = torch.randn(4, models.z_dim)
    same_z = z[:1].expand(5, -1)
    classes = torch.arange(5)
    images = G(same_z, classes)
    assert images.shape == (5, 3, resolution, resolution)
    # One latent, five classes: five different images; one image, five classes: five different logits.
    assert len({tuple(img.flatten()[:50].tolist()) for img in images}) == 5
    logits = D(images[:1].expand(5, -1, -1, -1), classes)
    assert logits.shape == (5,) and len(set(logits.tolist())) == 5


@pytest.mark.parametrize(("name", "resolution"), MODELS)
def test_the_class_embeddings_receive_gradients(name: str, resolution: int):
    torch.manual_seed(0)
    models = build_models(_config(name, resolution), channels=1, resolution=resolution, num_classes=3)
    z, c = torch.randn(6, models.z_dim), torch.tensor([0, 1, 2, 0, 1, 2])
    models.discriminator(models.generator(z, c), c).sum().backward()
    for net in (models.generator, models.discriminator):
        grads = {k: p.grad for k, p in net.named_parameters() if "embed" in k}
        assert grads, f"{type(net).__name__} has no class embedding"
        assert all(g is not None and g.abs().sum() > 0 for g in grads.values()), grads.keys()


@pytest.mark.parametrize(("name", "resolution"), MODELS)
def test_unconditional_networks_keep_their_parameter_names(name: str, resolution: int):
    # Weights saved before conditioning existed must still load into an unconditional build.
    models = build_models(_config(name, resolution), channels=1, resolution=resolution)
    names = [k for net in (models.generator, models.discriminator) for k in net.state_dict()]
    assert not any("embed" in k or k.startswith(("features.", "head.", "net.")) for k in names), names


def test_a_user_builder_without_num_classes_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "plain_nets.py").write_text(
        "from distgan.models import build_models\n"
        "def build(cfg, channels, resolution):\n"
        "    return build_models(cfg.model_copy(update={'name': 'mlp'}), channels, resolution)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError) as err:
        build_models(_config("plain_nets:build", 16), channels=1, resolution=16, num_classes=10)
    message = str(err.value)
    assert "\n" not in message and "num_classes" in message and "data.conditional=false" in message


def test_a_user_builder_with_num_classes_gets_the_count(tmp_path, monkeypatch):
    (tmp_path / "class_nets.py").write_text(
        "from distgan.models import build_models\n"
        "seen = []\n"
        "def build(cfg, channels, resolution, num_classes=0):\n"
        "    seen.append(num_classes)\n"
        "    return build_models(cfg.model_copy(update={'name': 'mlp'}), channels, resolution, num_classes)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    models = build_models(_config("class_nets:build", 16), channels=1, resolution=16, num_classes=7)
    import class_nets

    assert class_nets.seen == [7] and models.num_classes == 7


@pytest.mark.parametrize(("name", "resolution"), [("dcgan", 16), ("resnet", 8)])
def test_a_batchnorm_generator_is_conditioned_by_its_batchnorms_not_its_input(name: str, resolution: int):
    # A class embedding concatenated to z before a BatchNorm swamped z (one image per class on
    # MNIST); the BatchNorm Gs read z alone and take the class in every BatchNorm.
    from distgan.models.conditioning import ConditionalBatchNorm2d

    models = build_models(_config(name, resolution), channels=1, resolution=resolution, num_classes=4)
    G = models.generator
    first = next(m for m in G.modules() if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d)))
    assert (first.in_features if isinstance(first, torch.nn.Linear) else first.in_channels) == models.z_dim
    norms = [m for m in G.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    conditional = [m for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)]
    assert norms and len(conditional) == len(norms) and all(not m.affine for m in norms)
    # g_norm=none has no BatchNorm to carry the class: the embedding joins z there.
    plain = build_models(
        _config(name, resolution, "model.g_norm=none"), channels=1, resolution=resolution, num_classes=4
    )
    assert hasattr(plain.generator, "embed") and not any(
        isinstance(m, ConditionalBatchNorm2d) for m in plain.generator.modules()
    )
