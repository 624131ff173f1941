"""A trained tiny run and a tiny extractor, shared by the evaluation tests of a module."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import write_mnist
from tests.evaluation.tiny_extractor import write_tiny_extractor
from tests.training.helpers import train_in_process


@pytest.fixture(scope="module")
def eval_assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval_assets")
    data = write_mnist(root / "mnist")
    run = train_in_process(root / "run", data, "train.steps=3")
    return {
        "data": data,
        "run": run,
        "extractor": write_tiny_extractor(root / "tiny.pt"),
        "extractor_logits": write_tiny_extractor(root / "tiny_logits.pt", logits=True),
    }
