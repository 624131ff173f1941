"""`data.source=hf`: a `save_to_disk` directory, or a dataset id on the Hugging Face hub.

A local directory is read with `datasets.load_from_disk` (a `DatasetDict` gives `data.split`);
anything else that does not exist locally is taken as a hub id and read with
`load_dataset(id, split=data.split)`. Without network, `load_dataset` retries for ~25 s
(printing a dozen retry lines) before failing, so one HEAD request to the hub comes first and
an unreachable hub is one line within seconds. With HF_HUB_OFFLINE=1 there is no request:
`load_dataset` reads the local cache or fails at once.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from distgan.config import DataConfig
from distgan.data.dataset import ImageDataset
from distgan.errors import DataError, one_line

PROBE_SECONDS = 5.0


def hub_reachable(timeout: float = PROBE_SECONDS) -> bool:
    """Whether the hub answers one HEAD request within `timeout`, through huggingface_hub's own
    client (so its proxies, certificates and HF_ENDPOINT apply); any HTTP answer counts."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception:  # DNS, refused, TLS, timeout: whatever the transport raises
        return False
    return True


def load_hub_split(hub_id: str, split: str, hint: str) -> datasets.Dataset:
    """`load_dataset(hub_id, split=split)`, or a DataError ending with `hint` (how to go local)."""
    from huggingface_hub import constants

    if not constants.HF_HUB_OFFLINE and not hub_reachable():
        raise DataError(
            f"hub dataset {hub_id} could not be loaded: the hub ({constants.ENDPOINT}) could not be reached "
            f"(no answer within {PROBE_SECONDS:g} s): {hint} "
            f"(a copy already in the Hugging Face cache loads with HF_HUB_OFFLINE=1)"
        )
    try:
        return datasets.load_dataset(hub_id, split=split)
    except ValueError as err:
        if "split" in str(err).lower():  # reached the hub, but no such split
            raise DataError(f"hub dataset {hub_id}: {one_line(err)}: set data.split to one of its splits") from None
        raise DataError(f"hub dataset {hub_id} could not be loaded ({one_line(err)}): {hint}") from None
    except Exception as err:  # offline, unreachable, unknown id, gated, ...
        raise DataError(
            f"hub dataset {hub_id} could not be loaded: the hub could not be reached "
            f"or has no such dataset ({one_line(err)}): {hint}"
        ) from None


def _from_disk(root: Path, split: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_from_disk(str(root))
    except FileNotFoundError:
        raise DataError(
            f"data.path={root} is a directory but not one written by save_to_disk: "
            f"for a folder of image files use data.source=imagefolder"
        ) from None
    except Exception as err:
        raise DataError(f"data.path={root}: cannot read the saved dataset ({one_line(err)})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"data.split={split!r} is not in {root}: its splits are {', '.join(loaded)}")
        return loaded[split]
    return loaded


def load_hf(cfg: DataConfig, channels: int) -> ImageDataset:
    assert cfg.path  # the config requires data.path for source=hf
    root = Path(cfg.path).expanduser()
    if root.is_dir():
        hf, name = _from_disk(root, cfg.split), f"dataset {root}, split {cfg.split}"
    elif root.exists() or cfg.path.startswith((".", "/", "~")) or cfg.path.count("/") > 1:
        raise DataError(
            f"data.path={cfg.path} is not a directory: give a save_to_disk directory or a hub id (user/name)"
        )
    else:
        hint = (
            "to train without the hub use data.source=mnist data.path=DIR (a folder of the MNIST IDX files), "
            "data.source=mnist without data.path (the MNIST subset bundled with distgan), "
            "data.path=DIR written by Dataset.save_to_disk, or data.source=imagefolder data.path=DIR_OF_IMAGES"
        )
        hf, name = load_hub_split(cfg.path, cfg.split, hint), f"hub dataset {cfg.path}, split {cfg.split}"
    return ImageDataset(
        hf,
        image_column=cfg.image_column,
        label_column=cfg.label_column,
        channels=channels,
        resolution=cfg.resolution,
        name=name,
    )
