"""The model catalog: one list that the config validates from and the registry builds from."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from distgan.config import ConfigError, ModelConfig, load_config
from distgan.errors import ModelError
from distgan.models import GANModels, build_models, register_model, registered_models
from distgan.models.catalog import CATALOG, REGISTERED
from distgan.models.registry import _builtin_builder
from tests.models.custom_nets import tuple_pair
from tests.training.helpers import REPO


def test_config_and_catalog_import_without_torch():
    code = "import sys, distgan.config, distgan.models.catalog; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("entry", CATALOG.values(), ids=list(CATALOG))
def test_every_entry_builds_at_a_resolution_it_accepts(entry):
    smallest = max(16, entry.min_resolution)
    assert callable(_builtin_builder(entry, smallest))
    cfg = ModelConfig(name=entry.name, z_dim=4, g_width=4, d_width=4)
    with torch.no_grad():
        images = build_models(cfg, 1, smallest).generator.eval()(torch.zeros(1, 4))
    assert images.shape == (1, 1, smallest, smallest)


@pytest.mark.parametrize(
    "name,res,allowed",
    [
        ("dcgan", 8, "a power of two >= 16 (16, 32, 64, 128, ...)"),
        ("resnet", 12, "a power of two >= 8 (8, 16, 32, 64, ...)"),
    ],
)
def test_config_states_the_catalog_rule(name: str, res: int, allowed: str):
    with pytest.raises(ConfigError) as err:
        load_config("mnist_dcgan", [f"model.name={name}", f"data.resolution={res}"])
    assert str(err.value) == f"data.resolution={res}: model {name} needs {allowed}"


def test_unknown_name_lists_the_catalog():
    with pytest.raises(ConfigError) as err:
        load_config("mnist_dcgan", ["model.name=unet"])
    assert str(err.value) == "model.name='unet': use one of dcgan, mlp, r3gan, resnet or 'package.module:Class'"


def test_registered_third_party_model_is_accepted_and_built():
    def build_tiny(cfg: ModelConfig, channels: int, resolution: int) -> GANModels:
        return GANModels(*tuple_pair(cfg, channels, resolution), z_dim=cfg.z_dim)

    register_model("tiny_test_gan")(build_tiny)
    try:
        assert "tiny_test_gan" in registered_models()
        cfg = load_config("mnist_dcgan", ["model.name=tiny_test_gan", "data.resolution=16"])
        models = build_models(cfg.model, 1, 16)
        assert models.generator(torch.zeros(2, cfg.model.z_dim)).shape == (2, 1, 16, 16)
        with pytest.raises(ModelError, match="registered twice"):
            register_model("tiny_test_gan")(lambda cfg, channels, resolution: None)
        with pytest.raises(ModelError, match="registered twice"):
            register_model("dcgan")(build_tiny)
    finally:
        REGISTERED.pop("tiny_test_gan", None)
