"""distgan-launch: accelerate launch of the trainer whose errors stay one line."""

from __future__ import annotations

import pytest

from distgan.launch import split_argv
from tests.training.helpers import accelerate_launch, outcome, run_module


def test_split_between_launcher_flags_and_trainer_arguments():
    assert split_argv(["--num_processes", "2", "--config", "cifar10_dcgan", "train.steps=3"]) == (
        ["--num_processes", "2"],
        ["--config", "cifar10_dcgan", "train.steps=3"],
    )
    assert split_argv(["--num_processes=2", "train.steps=3"]) == (["--num_processes=2"], ["train.steps=3"])
    assert split_argv(["--cpu"]) == (["--cpu"], [])


@pytest.mark.parametrize("processes", [1, 2])
def test_a_config_error_is_one_line_with_the_trainers_exit_code(processes: int):
    # The same flags the tests give `accelerate launch`, the script left out.
    flags = accelerate_launch(processes)[3:]
    result = run_module("launch", *flags, "train.stepz=3")
    assert result.returncode == 2, outcome(result)
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines() if line.startswith("distgan: error:")
    ], outcome(result)
    assert result.stderr.count("distgan: error:") == 1 and "train.stepz" in result.stderr, outcome(result)
    assert "Traceback" not in result.stderr
