"""Sharing a trained generator the way the Hugging Face ecosystem does: a folder with the EMA
weights, the run's config, a sample grid and a model card, saved locally or pushed to the hub.

The folder is also a valid `load_generator` source, so `distgan.sample`, `distgan.evaluate` and
the Python loader read it as they read a run's `final/`.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from distgan.errors import DistganError, one_line
from distgan.training.export import save_networks
from distgan.utils.images import save_image_grid
from distgan.version import __version__

if TYPE_CHECKING:
    from distgan.generator import Generator

WEIGHTS_FILE = "generator_ema.safetensors"
CARD_FILE = "README.md"
GRID_FILE = "samples.png"


def save_pretrained(generator: Generator, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
    """Writes the shareable folder; `metrics` (an evaluation row: fid, kid, protocol...) goes on the card."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = generator.config
    metadata = {"distgan_config": cfg.to_yaml(), "channels": generator.channels, "resolution": generator.resolution}
    if generator.step is not None:
        metadata["step"] = generator.step
    metadata.update(generator.class_metadata())
    save_networks(directory, {"generator_ema": generator.net}, metadata)
    (directory / "config.yaml").write_text(cfg.to_yaml())
    save_image_grid(generator.sample(64, seed=0).cpu(), directory / GRID_FILE)
    (directory / CARD_FILE).write_text(model_card(generator, metrics))
    return directory


def from_pretrained(source: str | Path, device: torch.device | str = "cpu") -> Generator:
    """A folder written by `save_pretrained` (or any `load_generator` source), else a hub repo id."""
    from distgan.generator import load_generator

    if Path(source).exists():
        return load_generator(source, device)
    from huggingface_hub import snapshot_download

    try:
        local = snapshot_download(repo_id=str(source), allow_patterns=[WEIGHTS_FILE, "config.yaml", CARD_FILE])
    except Exception as err:  # noqa: BLE001 - the hub client raises many types; all mean "not fetched"
        raise DistganError(
            f"{source} is neither a local folder nor a hub model that could be fetched "
            f"({one_line(err)}): give a folder written by save_pretrained or a hub repo id"
        ) from None
    return load_generator(local, device)


def push_to_hub(
    generator: Generator,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    metrics: dict[str, Any] | None = None,
) -> str:
    """Creates `repo_id` if needed and uploads the shareable folder; returns the commit's URL.

    Authentication is huggingface_hub's: `token`, else `HF_TOKEN` or `huggingface-cli login`.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(generator, folder, metrics)
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=f"distgan {__version__}: EMA generator"
        )
    return commit.commit_url


def model_card(generator: Generator, metrics: dict[str, Any] | None) -> str:
    cfg = generator.config
    shape = f"{generator.channels}x{generator.resolution}x{generator.resolution}"
    if metrics and "fid" in metrics:
        protocol = {k: v for k, v in metrics.items() if k.startswith("eval_")}
        quality = f"FID {metrics['fid']:.3f} (KID {metrics.get('kid')}), protocol: `{json.dumps(protocol)}`"
    else:
        quality = "not measured with this export (run `python -m distgan.evaluate` on the folder)"
    shape_comment = f"# [16, {generator.channels}, {generator.resolution}, {generator.resolution}] in [-1, 1]"
    classes = ""
    if generator.num_classes:
        names = f" ({', '.join(generator.class_names)})" if generator.class_names else ""
        classes = f" Class-conditional: {generator.num_classes} classes{names}; `labels=` picks them."
    return f"""---
library_name: distgan
tags: [gan, image-generation, distgan]
---
# {cfg.model.name} generator ({cfg.data.source} data, {shape})

The exponential-moving-average generator of a distgan run, trained for {generator.step} steps
(global batch {cfg.train.batch_size}, loss `{cfg.loss.name}`), distgan {__version__}.

![64 samples, seed 0]({GRID_FILE})

Quality: {quality}.

```python
import distgan
G = distgan.Generator.from_pretrained("THIS_FOLDER_OR_REPO_ID")
images = G.sample(16, seed=0{", labels=0" if generator.num_classes else ""})  {shape_comment}
```

Latent size {generator.z_dim}.{classes} The full training config is `config.yaml` beside this card.
"""
