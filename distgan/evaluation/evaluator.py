"""FID, KID and (where the extractor has logits) Inception Score of a generator."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
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
from distgan.models.conditioning import uniform_classes


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

    def _reference(self) -> real_stats.RealStats | None:
        if not self._real_ready:
            self.real = real_stats.load_or_compute(self.accelerator, self.cfg, self.extractor)
            self._real_ready = True
        return self.real

    def _generated(
        self, generator: nn.Module, z_dim: int, num: int, seed: int, labels: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        was_training = generator.training
        generator.eval()
        try:
            return generated_features(
                *(self.accelerator, generator, z_dim, num, self.cfg.eval.batch_size, seed, self.extractor),
                self.cfg.train.progress,
                labels,
            )
        finally:
            generator.train(was_training)

    def evaluate(
        self, generator: nn.Module, z_dim: int, num_images: int, seed: int, num_classes: int = 0
    ) -> dict[str, Any]:
        """Metrics of `num_images` images from `generator` (latents drawn from `seed`; a conditional
        generator's classes uniform over its `num_classes`, drawn from `seed` too). Call on every
        rank; every rank gets the same dict (floats, counts, the extractor name)."""
        if num_images < 2:
            raise EvaluationError(f"FID needs at least 2 generated images, got {num_images}")
        acc, cfg = self.accelerator, self.cfg
        start = time.perf_counter()
        self._reference()
        labels = uniform_classes(num_images, num_classes, seed) if num_classes else None
        features, logits = self._generated(generator, z_dim, num_images, seed, labels)
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

    def intra_fid(
        self, generator: nn.Module, z_dim: int, images_per_class: int, seed: int, num_classes: int
    ) -> dict[str, Any]:
        """Intra-class FID (Miyato & Koyama 2018): per class, FID of `images_per_class` images of
        that class against the reference images of that class; their mean. Call on every rank."""
        if images_per_class < 2:
            raise EvaluationError(f"intra-class FID needs at least 2 images per class, got {images_per_class}")
        acc = self.accelerator
        real = self._reference()  # on the main process; the others decide with it, not hang alone
        ok = [None]
        if acc.is_main_process:
            labels = real.labels if real.labels is not None else np.full(1, -1)
            counts = np.bincount(np.maximum(labels, 0), minlength=num_classes)
            ok = [bool((labels >= 0).all() and (counts[:num_classes] >= 2).all())]
        if acc.num_processes > 1:
            ok = broadcast_object_list(ok)
        if not ok[0]:
            raise EvaluationError(
                f"intra-class FID needs at least 2 labelled reference images of each of the {num_classes} "
                f"classes in split {real_stats.real_split(self.cfg)!r}: raise eval.num_real or pick another "
                f"eval.real_split"
            )
        per_class = []
        for k in range(num_classes):
            labels = torch.full((images_per_class,), k, dtype=torch.int64)
            features, _ = self._generated(generator, z_dim, images_per_class, seed, labels)
            if acc.is_main_process:
                mine = torch.from_numpy(real.labels == k)
                mu_real, sigma_real = feature_statistics(real.features[mine])
                per_class.append(frechet_distance(*feature_statistics(features), mu_real, sigma_real))
        result = None
        if acc.is_main_process:
            result = {
                "intra_fid": float(np.mean(per_class)),
                "intra_fid_per_class": per_class,
                "intra_fid_images_per_class": images_per_class,
            }
        if acc.num_processes > 1:
            result = broadcast_object_list([result])[0]
        return result
