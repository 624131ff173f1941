"""Resuming refuses, in one line, a checkpoint that cannot be the configured run's."""

from __future__ import annotations

import re

import pytest

from distgan.errors import CheckpointError
from distgan.training.checkpoint import resolve_resume
from tests.training.helpers import reset_accelerate, tiny_config, train_in_process


@pytest.mark.parametrize(
    ("wider", "expected"),
    [
        ("g_width", r"G '[\w.]+' is \[\d+(,\d+)*\] in the checkpoint, \[\d+(,\d+)*\] now"),
        ("d_width", r"D '[\w.]+' is \[\d+(,\d+)*\] in the checkpoint, \[\d+(,\d+)*\] now"),
    ],
)
def test_resume_with_another_width_names_the_tensor_and_both_shapes(tmp_path, mnist_dir, wider, expected):
    """The same config, other networks: a user's network code that changed between two starts
    (a changed config is refused before this, see test_run_config.py)."""
    from distgan.models import build_models
    from distgan.training.loop import Trainer

    out = tmp_path / "run"
    train_in_process(out, mnist_dir, "train.steps=1", "train.checkpoint_every=1")
    reset_accelerate()
    cfg = tiny_config(out, mnist_dir, "train.steps=2")
    nets = build_models(cfg.model.model_copy(update={wider: 16}), channels=1, resolution=cfg.data.resolution)
    with pytest.raises(CheckpointError) as caught:
        Trainer(cfg, generator=nets.generator, discriminator=nets.discriminator)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("checkpoint step_1 does not fit the configured network: ")
    assert re.search(expected, message), message
    assert "older" not in message  # an older checkpoint of the same run has the same shapes


def test_every_checkpoint_damaged_names_the_newest_not_the_oldest(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2):
        (root / f"step_{step}").mkdir(parents=True)  # no files at all: damaged
    with pytest.warns(UserWarning), pytest.raises(CheckpointError) as caught:
        resolve_resume("auto", root)
    message = str(caught.value)
    assert "(newest, step_2: missing model.safetensors" in message, message
