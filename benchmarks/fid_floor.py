"""Real-vs-real FID: the floor of a dataset under an evaluation protocol.

    python benchmarks/fid_floor.py [--splits train test] [--num N] [--previous-protocol] [key=value ...]

FID and KID between the reference statistics of two splits of the same dataset, each
computed (and cached) exactly as `distgan.evaluate` computes its reference: the config's
`data.*` and `eval.*` (extractor, `eval.resize`, cache), `--num` / `--num-b` images of each
split (a seeded uniform subset, default all). No generator can score below this at the
same image counts, so it is the scale against which a run's FID reads.

`--previous-protocol` measures with distgan's protocol before the published one was adopted
(antialiased bicubic to 299 in float, rounded to uint8, then x / 127.5 - 1), kept here only to
state how far numbers measured that way move; it has its own cache key.

    python benchmarks/fid_floor.py --num 10000                      # bundled MNIST: 10k train vs the 10k test digits
    python benchmarks/fid_floor.py data.source=imagefolder data.path=DIR data.channels=3
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from distgan.config import load_config
from distgan.evaluation import real_stats
from distgan.evaluation.features import FID_INCEPTION, INPUT_SIZE, TorchScriptExtractor, build_extractor
from distgan.evaluation.fid import frechet_distance
from distgan.evaluation.fid_inception import fetch_once
from distgan.evaluation.kid import kernel_inception_distance


class PreviousProtocolExtractor(TorchScriptExtractor):
    """distgan's protocol before the published one: antialiased bicubic in float, uint8, x / 127.5 - 1."""

    def __init__(self, path: str, device: torch.device) -> None:
        super().__init__(path, device)
        self.protocol = "fid-inception/previous-bicubic-antialias-uint8"
        self.resizer = "torch-bicubic-antialias-299-uint8"  # the cache key of those days

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = images.to(self.device).float()
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bicubic", align_corners=False, antialias=True)
        out = self.net(x.round().clamp(0, 255).div(127.5).sub(1.0))
        return (out[0] if isinstance(out, (tuple, list)) else out).flatten(1), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", nargs=2, default=["train", "test"], metavar=("A", "B"))
    parser.add_argument("--num", type=int, default=None, help="images of split A (a seeded subset); default all")
    parser.add_argument("--num-b", type=int, default=None, help="images of split B (a seeded subset); default all")
    parser.add_argument("--previous-protocol", action="store_true")
    parser.add_argument("overrides", nargs="*", help="config key=value")
    args = parser.parse_args()

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    base = load_config(None, args.overrides)
    spec = str(fetch_once(accelerator)) if base.eval.inception == FID_INCEPTION else base.eval.inception
    if args.previous_protocol:
        extractor = PreviousProtocolExtractor(spec, accelerator.device)
    else:
        extractor = build_extractor(spec, accelerator.device, base.eval.resize)
    start = time.perf_counter()
    stats = []
    for split, num in ((args.splits[0], args.num), (args.splits[1], args.num_b)):
        cfg = load_config(None, [*args.overrides, f"eval.real_split={split}", f"eval.num_real={num or 'null'}"])
        stats.append(real_stats.load_or_compute(accelerator, cfg, extractor))
    if accelerator.is_main_process:
        a, b = stats
        kid, kid_std = kernel_inception_distance(
            a.features, b.features, base.eval.kid_subsets, base.eval.kid_subset_size
        )
        row = {
            "fid": frechet_distance(a.mu, a.sigma, b.mu, b.sigma),
            "kid": kid,
            "kid_std": kid_std,
            "splits": args.splits,
            "images": [len(a.features), len(b.features)],
            "data": {"source": base.data.source, "path": base.data.path, "resolution": base.data.resolution},
            "eval_extractor": extractor.name,
            "eval_protocol": extractor.protocol,
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(json.dumps(row))


if __name__ == "__main__":
    main()
