"""FID, KID and (where the extractor has logits) Inception Score of a generator."""

from __future__ import annotations

import time
from typing import Any

from accelerate import Accelerator
from accelerate.utils import broadcast_object_list
from torch import nn

from distgan.config import Config
from distgan.evaluation import real_stats
from distgan.evaluation.extract import generated_features
from distgan.evaluation.features import FID_INCEPTION, EvaluationError, build_extractor
from distgan.evaluation.fid import feature_statistics, frechet_distance
from distgan.evaluation.fid_inception import fetch_once
from distgan.evaluation.inception_score import inception_score
from distgan.evaluation.kid import kernel_inception_distance


class Evaluator:
    """Builds the extractor and checks the reference split at once (a wrong `eval.inception` or
    `eval.real_split` fails before training); the reference statistics are loaded or computed
    on first use and kept."""

    def __init__(self, accelerator: Accelerator, cfg: Config) -> None:
        self.accelerator = accelerator
        self.cfg = cfg
        spec = cfg.eval.inception
        if spec == FID_INCEPTION:  # fetched once, by the main process
            spec = str(fetch_once(accelerator))
        self.extractor = build_extractor(spec, accelerator.device, cfg.eval.resize)
        real_stats.check_split(cfg)  # a missing reference split fails now, not at the first evaluation
        self.real: real_stats.RealStats | None = None
        self._real_ready = False

    def evaluate(self, generator: nn.Module, z_dim: int, num_images: int, seed: int) -> dict[str, Any]:
        """Metrics of `num_images` images from `generator` (latents drawn from `seed`). Call on
        every rank; every rank gets the same dict (floats, counts, the extractor name)."""
        if num_images < 2:
            raise EvaluationError(f"FID needs at least 2 generated images, got {num_images}")
        acc, cfg = self.accelerator, self.cfg
        start = time.perf_counter()
        if not self._real_ready:
            self.real = real_stats.load_or_compute(acc, cfg, self.extractor)
            self._real_ready = True
        was_training = generator.training
        generator.eval()
        features, logits = generated_features(
            acc, generator, z_dim, num_images, cfg.eval.batch_size, seed, self.extractor, cfg.train.progress
        )
        generator.train(was_training)
        result: dict[str, Any] | None = None
        if acc.is_main_process:
            mu, sigma = feature_statistics(features)
            kid, kid_std = kernel_inception_distance(
                self.real.features, features, cfg.eval.kid_subsets, cfg.eval.kid_subset_size, seed
            )
            result = {"fid": frechet_distance(mu, sigma, self.real.mu, self.real.sigma), "kid": kid, "kid_std": kid_std}
            if logits is not None:
                result["is"], result["is_std"] = inception_score(logits)
            result.update(
                {
                    "eval_images": num_images,
                    "eval_real_images": len(self.real.features),
                    "eval_real_split": real_stats.real_split(cfg),
                    "eval_extractor": self.extractor.name,
                    "eval_protocol": self.extractor.protocol,
                    # Both sides at the training resolution (MNIST's 28x28 digits are read at data.resolution).
                    "eval_resolution": cfg.data.resolution,
                    "eval_seconds": time.perf_counter() - start,
                }
            )
        if acc.num_processes > 1:
            result = broadcast_object_list([result])[0]
        return result
