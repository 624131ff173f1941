"""The Python API as a user script uses it: `import distgan`, train, `load_generator`, `sample`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import distgan
from distgan.errors import DistganError
from distgan.training.checkpoint import EMA_FILE
from distgan.utils.images import image_grid
from tests.conftest import write_mnist
from tests.evaluation.tiny_extractor import write_tiny_extractor
from tests.training.helpers import REPO, train_in_process

STEPS = 4


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run whose in-training evaluation (tiny extractor) leaves a final/best/."""
    root = tmp_path_factory.mktemp("api")
    data = write_mnist(root / "mnist")
    extractor = write_tiny_extractor(root / "tiny.pt")
    return train_in_process(
        root / "run",
        data,
        f"train.steps={STEPS}",
        "eval.every=2",
        f"eval.inception={extractor}",
        "eval.num_images=16",
        "eval.batch_size=8",
        "eval.kid_subsets=2",
        "eval.kid_subset_size=8",
        f"eval.stats_cache={root / 'stats'}",
        "eval.real_split=test",
    )


def test_import_is_cheap_and_exports_the_api():
    code = (
        "import sys, distgan; assert 'torch' not in sys.modules, 'torch imported'; "
        "cfg = distgan.load_config('mnist_dcgan'); assert 'torch' not in sys.modules, 'config imported torch'; "
        "print(distgan.__version__, type(cfg).__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [distgan.__version__, "Config"]
    from distgan.training.loop import Trainer

    assert distgan.Trainer is Trainer and isinstance(distgan.load_config("mnist_dcgan"), distgan.Config)
    assert {"Config", "Trainer", "load_config", "load_generator", "__version__"} <= set(dir(distgan))
    with pytest.raises(AttributeError, match="no attribute 'train_gan'"):
        distgan.train_gan  # noqa: B018


def test_every_saved_place_gives_the_same_generator(run: Path):
    best = run / "final" / "best"
    assert best.is_dir(), "the run was meant to evaluate and keep a final/best/"
    G = distgan.load_generator(run)
    assert isinstance(G, torch.nn.Module) and not G.training
    assert (G.z_dim, G.channels, G.resolution, G.step) == (8, 1, 16, STEPS)
    assert G.config.model.name == "dcgan" and G.config.train.steps == STEPS
    images = G.sample(8, seed=3)
    assert images.shape == (8, 1, 16, 16) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    for place in (run / "final", run / "final" / "generator_ema.safetensors", str(run)):
        assert torch.equal(distgan.load_generator(place).sample(8, seed=3), images), place
    best_images = distgan.load_generator(best).sample(8, seed=3)
    assert best_images.shape == images.shape and best_images.min() >= -1 and best_images.max() <= 1


def test_seed_decides_the_images_whatever_the_batch_size(run: Path):
    G = distgan.load_generator(run)
    images = G.sample(8, seed=3)
    assert torch.equal(G.sample(8, seed=3), images)
    assert not torch.equal(G.sample(8, seed=4), images)
    torch.testing.assert_close(G.sample(8, seed=3, batch_size=3), images, rtol=0, atol=1e-6)
    # The latents of `sample(n, seed)` are the documented ones: drawn on the CPU from `seed`.
    z = torch.randn(8, G.z_dim, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(G(z), images, rtol=0, atol=1e-6)
    G.train()
    assert torch.equal(G.sample(8, seed=3), images) and G.training  # sampling uses eval mode and restores the mode


def test_sample_cli_writes_the_images_of_sample(run: Path, tmp_path: Path):
    out = tmp_path / "grid.png"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "distgan.sample",
            str(run / "final" / "best"),
            "--num",
            "8",
            "--seed",
            "3",
            "--out",
            str(out),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    expected = image_grid(distgan.load_generator(run / "final" / "best").sample(8, seed=3))
    assert np.array_equal(np.asarray(Image.open(out)), expected)


def test_checkpoint_directory_holds_the_ema_generator_by_name(run: Path, tmp_path: Path):
    # The on-disk contract: checkpoints/step_<N>/EMA_FILE is the EMA generator's own state_dict
    # (no metadata); its config is its own config.yaml, else the run's two levels up (older checkpoints).
    copy = tmp_path / "run"
    step_dir = copy / "checkpoints" / "step_5"
    step_dir.mkdir(parents=True)
    shutil.copy(run / "config.yaml", copy / "config.yaml")
    save_file(load_file(str(run / "final" / "generator_ema.safetensors")), str(step_dir / EMA_FILE))
    G = distgan.load_generator(step_dir)
    assert (G.z_dim, G.channels, G.resolution, G.step) == (8, 1, 16, 5)
    assert torch.equal(G.sample(4, seed=1), distgan.load_generator(run).sample(4, seed=1))

    (step_dir / EMA_FILE).unlink()
    with pytest.raises(DistganError, match=f"step_5 has no {EMA_FILE}: it was written by an older distgan"):
        distgan.load_generator(step_dir)
    lonely = tmp_path / "lonely" / "step_2"
    lonely.mkdir(parents=True)
    shutil.copy(run / "final" / "generator_ema.safetensors", lonely / EMA_FILE)
    with pytest.raises(DistganError, match="no config.yaml in it or two levels up"):
        distgan.load_generator(lonely)


def test_user_errors_are_one_line(run: Path, tmp_path: Path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    cases = [
        (tmp_path / "missing", "no generator weights at .*missing: give a run directory"),
        (junk, "junk.safetensors is not a readable safetensors file"),
        (run / "final" / "discriminator.safetensors", "holds a discriminator: give generator_ema.safetensors"),
    ]
    # Weights of another network build (a renamed layer): the file and the tensors are named.
    renamed = tmp_path / "renamed"
    shutil.copytree(run / "final", renamed)
    state = load_file(str(renamed / "generator_ema.safetensors"))
    with safe_open(str(renamed / "generator_ema.safetensors"), framework="pt") as handle:
        metadata = handle.metadata()
    first = sorted(state)[0]
    state[f"old.{first}"] = state.pop(first)
    save_file(state, str(renamed / "generator_ema.safetensors"), metadata=metadata)
    cases.append(
        (
            renamed / "generator_ema.safetensors",
            rf"generator_ema.safetensors does not match model dcgan .*1 tensor\(s\) missing: {re.escape(first)}; "
            rf"1 tensor\(s\) unexpected: old\.{re.escape(first)}\).*trained with",
        )
    )
    for path, message in cases:
        with pytest.raises(DistganError, match=message) as err:
            distgan.load_generator(path)
        assert "\n" not in str(err.value)
    with pytest.raises(DistganError, match="this generator is unconditional") as err:
        distgan.load_generator(run).sample(4, labels=torch.zeros(4, dtype=torch.long))
    assert "\n" not in str(err.value)


class Strokes(torch.utils.data.Dataset):
    """A user's own dataset: 12x12 single-channel images of a vertical bar, with labels."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = torch.zeros(1, 16, 16, dtype=torch.uint8)
        image[0, 2:14, index % 12 : index % 12 + 3] = 255
        return {"image": image, "label": torch.tensor(index % 4)}


def test_trainer_takes_your_own_networks_optimizers_and_dataset(tmp_path: Path):
    from tests.training.helpers import reset_accelerate

    reset_accelerate()
    cfg = distgan.load_config(
        "mnist_dcgan",
        [
            "model.z_dim=8",
            "train.steps=4",
            "train.batch_size=8",
            "train.progress=false",
            f"output_dir={tmp_path / 'run'}",
        ],
    )
    G = torch.nn.Sequential(torch.nn.Linear(8, 256), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 16, 16)))
    D = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 1), torch.nn.Flatten(0))
    before = [p.detach().clone() for p in (*G.parameters(), *D.parameters())]
    # Plain (not fused) Adam: the trainer still skips non-finite steps, with one host sync.
    opt_g, opt_d = torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=1e-3)
    out = distgan.Trainer(cfg, generator=G, discriminator=D, opt_g=opt_g, opt_d=opt_d, dataset=Strokes()).run()
    after = [p.detach() for p in (*G.parameters(), *D.parameters())]
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert opt_d.state[next(iter(D.parameters()))]["step"] == 4  # the user's optimizer did the steps
    weights = load_file(str(out / "final" / "generator.safetensors"))
    assert torch.equal(weights["0.weight"], G[0].weight.detach())
    with pytest.raises(DistganError, match="give both generator= and discriminator="):
        reset_accelerate()
        distgan.Trainer(cfg, generator=G)
