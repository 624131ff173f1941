"""Trained networks back from disk: `load_generator(path)` for sampling, `load_discriminator(path)` for scoring.

Both accept what a run leaves behind: the run directory, `final/`, `final/best/`, or one of
their `.safetensors` files (which carry the run's config in their metadata, so a file works
on its own). `load_generator` also reads `checkpoints/step_<N>`, whose EMA generator is
stored by name and whose config is the run's `config.yaml` two levels up.
"""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors import safe_open
from safetensors.torch import load_file
from torch import Tensor, nn

from distgan.config import Config
from distgan.errors import DistganError, ModelError
from distgan.models import build_models
from distgan.models.conditioning import class_metadata, classes_from_metadata, uniform_classes
from distgan.models.gan_models import GANModels
from distgan.training.checkpoint import EMA_FILE, checkpoint_step, shape_differences

FINAL_DIR = "final"
DISCRIMINATOR_FILE = "discriminator.safetensors"
_WHERE = "give a run directory, final/, final/best/, a .safetensors file or checkpoints/step_<N>"


class Generator(nn.Module):
    """A trained generator with what is needed to use it: latent size, image shape, the run's
    config and, for a class-conditional one, its class count (and class names where known)."""

    def __init__(
        self,
        net: nn.Module,
        z_dim: int,
        channels: int,
        resolution: int,
        config: Config,
        step: int | None = None,
        num_classes: int = 0,
        class_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.net = net
        self.z_dim = z_dim
        self.channels = channels
        self.resolution = resolution
        self.config = config
        self.step = step
        self.num_classes = num_classes
        self.class_names = list(class_names or [])

    def forward(self, z: Tensor, c: Tensor | None = None) -> Tensor:
        return self.net(z) if c is None else self.net(z, c)

    def class_metadata(self) -> dict[str, str]:
        return class_metadata(self.num_classes, self.class_names)

    def class_id(self, name_or_id: str | int) -> int:
        """A class id from an id or a class name; one-line error when there is no such class."""
        if not self.num_classes:
            raise DistganError("a class was given but this generator is unconditional: leave the class out")
        if isinstance(name_or_id, str) and name_or_id in self.class_names:
            return self.class_names.index(name_or_id)
        try:
            k = int(name_or_id)
        except ValueError:
            k = -1
        if not 0 <= k < self.num_classes:
            names = f" or a name ({', '.join(self.class_names)})" if self.class_names else ""
            raise DistganError(f"class {name_or_id}: this generator has classes 0..{self.num_classes - 1}{names}")
        return k

    @classmethod
    def from_pretrained(cls, source: str | Path, device: torch.device | str = "cpu") -> Generator:
        """A folder from `save_pretrained` (or any run output `load_generator` reads), or a hub repo id."""
        from distgan.sharing import from_pretrained

        return from_pretrained(source, device)

    def save_pretrained(self, directory: str | Path, metrics: dict | None = None) -> Path:
        """Weights, config, a sample grid and a model card in `directory` (distgan.sharing)."""
        from distgan.sharing import save_pretrained

        return save_pretrained(self, directory, metrics)

    def push_to_hub(self, repo_id: str, **kwargs) -> str:
        """`save_pretrained` into a hub model repo (created if needed); returns the commit URL."""
        from distgan.sharing import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @torch.no_grad()
    def sample(
        self, n: int, seed: int = 0, labels: Tensor | int | str | list[int] | None = None, batch_size: int = 256
    ) -> Tensor:
        """`n` images [n, C, R, R] in [-1, 1] on the generator's device; the same seed gives the same images.

        A conditional generator draws each image's class from `labels`: one class (an id or a
        class name) for all, or `n` ids; None draws them uniformly from `seed`."""
        if n < 1 or batch_size < 1:
            raise DistganError(f"sample(n={n}, batch_size={batch_size}): both must be at least 1")
        classes = self._classes(n, seed, labels)
        # Latents are drawn on the CPU so that a seed gives the same images on every device.
        z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))
        param = next(self.net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = self.training
        self.eval()  # batch statistics would make an image depend on the rest of its batch
        try:
            chunks = z.split(batch_size)
            if classes is None:
                return torch.cat([self.net(chunk.to(device)) for chunk in chunks])
            return torch.cat(
                [self.net(chunk.to(device), c.to(device)) for chunk, c in zip(chunks, classes.split(batch_size))]
            )
        finally:
            self.train(was_training)

    def _classes(self, n: int, seed: int, labels: Tensor | int | str | list[int] | None) -> Tensor | None:
        if not self.num_classes:
            if labels is not None:
                raise DistganError("labels were given but this generator is unconditional: sample() without labels")
            return None
        if labels is None:
            return uniform_classes(n, self.num_classes, seed)
        if isinstance(labels, (int, str)):
            return torch.full((n,), self.class_id(labels), dtype=torch.int64)
        classes = torch.as_tensor(labels, dtype=torch.int64).flatten().cpu()
        if len(classes) != n:
            raise DistganError(f"sample(n={n}) got {len(classes)} labels: give one class for all, or n class ids")
        if len(classes) and not (0 <= int(classes.min()) and int(classes.max()) < self.num_classes):
            raise DistganError(f"labels must lie in 0..{self.num_classes - 1}, got {classes.min()}..{classes.max()}")
        return classes


def load_generator(path: str | Path, device: torch.device | str = "cpu") -> Generator:
    """The EMA generator saved under `path`, in eval mode on `device`."""
    path = Path(path)
    if path.is_dir() and checkpoint_step(path) is not None:
        return _generator_from_checkpoint(path, device)
    weights = _find(path, "generator_ema.safetensors", "no generator weights")
    net, cfg, metadata, z_dim = _load_final_file(weights, device)
    if metadata["network"] == "discriminator":
        raise DistganError(f"{weights} holds a discriminator: give generator_ema.safetensors or its directory")
    return Generator(
        net,
        z_dim,
        int(metadata["channels"]),
        int(metadata["resolution"]),
        cfg,
        int(metadata["step"]) if "step" in metadata else None,
        *classes_from_metadata(metadata),
    ).eval()


def load_discriminator(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, Config]:
    """The discriminator saved under `path` (a run directory, final/, final/best/ or its .safetensors), in eval mode."""
    weights = _find(Path(path), DISCRIMINATOR_FILE, "no discriminator weights")
    net, cfg, metadata, _ = _load_final_file(weights, device)
    if metadata["network"] != "discriminator":
        raise DistganError(f"{weights} holds a generator: give {DISCRIMINATOR_FILE} or its directory")
    return net, cfg


def _find(path: Path, name: str, missing: str) -> Path:
    for candidate in (path / FINAL_DIR / name, path / name, path):
        if candidate.is_file():
            return candidate
    raise DistganError(f"{missing} at {path}: {_WHERE}")


def _load_final_file(path: Path, device: torch.device | str) -> tuple[nn.Module, Config, dict[str, str], int]:
    """A final/*.safetensors file -> (its network in eval mode, the run config, the file's metadata, z_dim)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata: dict[str, str] = handle.metadata() or {}
        state = load_file(str(path), device="cpu")
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for a bad file
        raise DistganError(f"{path} is not a readable safetensors file ({' '.join(str(err).split())})") from None
    if not {"distgan_config", "channels", "resolution", "network"} <= metadata.keys():
        raise DistganError(f"{path} has no distgan config in its metadata: give a file from a run's final/ directory")
    cfg = Config.model_validate(yaml.safe_load(metadata["distgan_config"]))
    channels, resolution = int(metadata["channels"]), int(metadata["resolution"])
    if cfg.data.conditional and "num_classes" not in metadata:
        raise DistganError(f"{path} is from a conditional run but does not record its class count: give final/ weights")
    nets = _build(cfg, channels, resolution, classes_from_metadata(metadata)[0])
    net = nets.discriminator if metadata["network"] == "discriminator" else nets.generator
    _load_state(net, state, path, cfg)
    return net.to(device).eval(), cfg, metadata, nets.z_dim


def _generator_from_checkpoint(step_dir: Path, device: torch.device | str) -> Generator:
    weights = step_dir / EMA_FILE
    if not weights.is_file():
        raise DistganError(f"{step_dir} has no {EMA_FILE}: it was written by an older distgan; use the run's final/")
    # Checkpoints hold their config; older ones have only the run directory's, two levels up.
    config_file = step_dir / "config.yaml"
    if not config_file.is_file():
        config_file = step_dir.parent.parent / "config.yaml"
    if not config_file.is_file():
        raise DistganError(
            f"{step_dir}: no config.yaml in it or two levels up: give a checkpoint inside its run directory"
        )
    cfg = Config.model_validate(yaml.safe_load(config_file.read_text()))
    try:
        state = load_file(str(weights), device="cpu")
        with safe_open(str(weights), framework="pt") as handle:
            num_classes, class_names = classes_from_metadata(handle.metadata() or {})
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error types for a bad file
        raise DistganError(f"{weights} is not a readable safetensors file ({' '.join(str(err).split())})") from None
    resolution = cfg.data.resolution
    # The config only fixes the channel count for MNIST or when data.channels is set; otherwise
    # it came from the images, so the weights decide between grey and colour.
    candidates = [cfg.data.channels] if cfg.data.channels else [1] if cfg.data.source == "mnist" else [3, 1]
    for i, channels in enumerate(candidates):
        nets = _build(cfg, channels, resolution, num_classes)
        try:
            _load_state(nets.generator, state, weights, cfg)
        except ModelError:
            if i == len(candidates) - 1:
                raise
            continue
        return Generator(
            *(nets.generator.to(device), nets.z_dim, channels, resolution, cfg, checkpoint_step(step_dir)),
            *(num_classes, class_names),
        ).eval()
    raise AssertionError("unreachable: the last candidate returns or raises")


def _build(cfg: Config, channels: int, resolution: int, num_classes: int = 0) -> GANModels:
    # Building initialises random weights that are overwritten at once: it must not move the caller's RNG.
    with torch.random.fork_rng(devices=[]):
        return build_models(cfg.model, channels=channels, resolution=resolution, num_classes=num_classes)


def _load_state(net: nn.Module, state: dict[str, Tensor], path: Path, cfg: Config) -> None:
    differences = shape_differences({key: list(value.shape) for key, value in state.items()}, net)
    problems = [
        _listed("missing", sorted(key for key, (was, _) in differences.items() if was is None)),
        _listed("unexpected", sorted(key for key, (_, now) in differences.items() if now is None)),
        _listed(
            "of another shape",
            [
                f"{key} {tuple(was)} vs {tuple(now)}"
                for key, (was, now) in differences.items()
                if was is not None and now is not None
            ],
        ),
    ]
    problems = [problem for problem in problems if problem]
    if problems:
        raise ModelError(
            f"{path} does not match model {cfg.model.name} as its config builds it ({'; '.join(problems)}): "
            "these weights come from another network config (model.*, data.conditional) or another distgan "
            "version; load them with the config.yaml they were trained with"
        )
    net.load_state_dict(state)


def _listed(what: str, keys: list[str], shown: int = 3) -> str:
    if not keys:
        return ""
    more = f" and {len(keys) - shown} more" if len(keys) > shown else ""
    return f"{len(keys)} tensor(s) {what}: {', '.join(keys[:shown])}{more}"
