"""A real SLURM cluster for the launch tests, started once per session under a throw-away dir."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.launch.slurm_cluster import SlurmCluster, unavailable_reason


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"no SLURM cluster: {reason}")
    # Not under pytest's 0700 temp root: munged runs as user munge and must reach its files.
    base = Path(tempfile.mkdtemp(prefix="distgan-slurm-"))
    base.chmod(0o755)
    cluster = SlurmCluster(base)
    try:
        cluster.start()  # root with the binaries installed: a failure here is a real failure
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(base, ignore_errors=True)
