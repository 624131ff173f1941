"""Features of generated and real images, computed in shards on every rank and gathered.

Rank r of W handles the contiguous rows [r * ceil(N / W), (r + 1) * ceil(N / W)) of the N
images (real images: of the N dataset indices it is given); shards are padded to the same
length for the all-gather, so the first N gathered rows are the N images in their global
order, whatever W is. Generated image i always comes from latent i of one seeded draw, so
1 and W processes measure the same images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from accelerate import Accelerator
from accelerate.utils import gather
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm.auto import tqdm

from distgan.evaluation.features import Extractor, to_rgb_uint8, to_uint8


def shard(total: int, rank: int, world: int) -> range:
    share = math.ceil(total / world)
    return range(min(rank * share, total), min((rank + 1) * share, total))


def gather_rows(accelerator: Accelerator, local: Tensor, total: int) -> Tensor:
    """All-gathers each rank's shard (see the module docstring) -> the [total, ...] rows, on every rank."""
    share = math.ceil(total / accelerator.num_processes)
    padded = local.new_zeros((share, *local.shape[1:]))
    padded[: len(local)] = local
    if accelerator.num_processes == 1:
        return padded[:total]
    return gather(padded.to(accelerator.device)).cpu()[:total]


def _features_of_batches(
    accelerator: Accelerator, batches, extractor: Extractor, shard_size: int, what: str, progress: bool
) -> tuple[list[Tensor], list[Tensor]]:
    # The main process's shard stands for all: minutes on a CPU deserve a bar. disable=None
    # turns it off when stderr is not a terminal (logs, CI).
    show = accelerator.is_main_process and progress
    bar = tqdm(total=shard_size, desc=what, unit="img", disable=None if show else True, leave=False)
    features, logits = [], []
    for images in batches:
        f, lg = extractor(to_rgb_uint8(images))
        features.append(f.float().cpu())
        if lg is not None:
            logits.append(lg.float().cpu())
        bar.update(len(images))
    bar.close()
    return features, logits


def _finish(
    accelerator: Accelerator, features: list[Tensor], logits: list[Tensor] | None, total: int, extractor: Extractor
) -> tuple[Tensor, Tensor | None]:
    feature_dim, logit_dim = _output_widths(extractor)
    local = torch.cat(features) if features else torch.zeros(0, feature_dim)
    all_features = gather_rows(accelerator, local, total)
    if logits is None:
        return all_features, None
    local_logits = torch.cat(logits) if logits else torch.zeros(0, logit_dim)
    return all_features, gather_rows(accelerator, local_logits, total)


def _output_widths(extractor: Extractor) -> tuple[int, int]:
    # A rank with an empty shard still needs the row widths for the all-gather.
    f, lg = extractor(torch.zeros(1, 3, 299, 299, dtype=torch.uint8))
    return f.shape[1], (lg.shape[1] if lg is not None else 0)


@torch.no_grad()
def generated_features(
    accelerator: Accelerator,
    generator: nn.Module,
    z_dim: int,
    num: int,
    batch_size: int,
    seed: int,
    extractor: Extractor,
    progress: bool = True,
    labels: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """Features (and logits) of `num` images from `generator`, latents from `seed`, of the
    classes `labels` [num] for a conditional generator; a progress bar on the main process with
    `progress` (and a terminal)."""
    z_all = torch.randn(num, z_dim, generator=torch.Generator().manual_seed(seed))
    rows = shard(num, accelerator.process_index, accelerator.num_processes)
    device = next(generator.parameters()).device

    def batches():
        for start in range(rows.start, rows.stop, batch_size):
            stop = min(start + batch_size, rows.stop)
            z = z_all[start:stop].to(device)
            yield to_uint8(generator(z) if labels is None else generator(z, labels[start:stop].to(device)))

    features, logits = _features_of_batches(accelerator, batches(), extractor, len(rows), "generated images", progress)
    return _finish(accelerator, features, logits if extractor.has_logits else None, num, extractor)


@torch.no_grad()
def dataset_features(
    accelerator: Accelerator,
    dataset: Dataset,
    indices: Sequence[int],
    batch_size: int,
    extractor: Extractor,
    num_workers: int = 0,
    progress: bool = True,
) -> Tensor:
    """Features of the images `dataset[i]` for i in `indices` (items {"image": uint8 [C, R, R]}),
    in that order; rank r extracts its shard of the positions in `indices`; a progress bar on the
    main process with `progress` (and a terminal)."""
    rows = shard(len(indices), accelerator.process_index, accelerator.num_processes)
    # A private generator: the loader must not draw from the global RNG the training uses.
    loader = DataLoader(
        Subset(dataset, [indices[i] for i in rows]),
        batch_size=batch_size,
        num_workers=num_workers,
        generator=torch.Generator(),
    )
    images = (batch["image"].to(accelerator.device) for batch in loader)
    features, _ = _features_of_batches(accelerator, images, extractor, len(rows), "reference images", progress)
    return _finish(accelerator, features, None, len(indices), extractor)[0]
