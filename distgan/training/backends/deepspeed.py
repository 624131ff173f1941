"""The DeepSpeed backend: ZeRO-1/2 for both networks, one engine per network, through two Accelerators.

accelerate ties ONE DeepSpeed engine to an Accelerator (`accelerator.backward` runs that
engine's backward and, at the accumulation boundary, its optimizer step) and refuses two
models in one prepare. Its supported pattern for two trained models (docs
`usage_guides/deepspeed_multiple_model`): the first Accelerator gets one DeepSpeedPlugin
per model, a second Accelerator shares its state, and `select_deepspeed_plugin` picks the
plugin before each prepare. D goes to the first Accelerator (the loop's main one: trackers,
checkpoint registrations, collectives), G to the second, so `backward` of D's loss steps
D's engine and `backward` of G's loss steps G's.

What the rest of distgan relies on, and why it holds under ZeRO-1/2:
- Parameters stay whole on every rank (only optimizer state and gradients are
  partitioned), so the EMA, sampling, the consistency check and the final weights read
  the unwrapped modules as under DDP.
- An engine's forward hooks its output into that engine's backward bookkeeping (prologue,
  then a reduction epilogue when the graph finishes). So the G phase differentiates
  through D's plain module, frozen as under DDP (through D's engine it would run D's
  epilogue with no gradients and crash), and R1 / WGAN-GP take `autograd.grad` through a
  separate forward of D's plain module (through the engine, that `autograd.grad` would
  run the epilogue early and rescale the penalty by the accumulation steps).
- Each engine steps at accelerate's accumulation boundary (the GradientState both
  Accelerators share) and averages gradients over ranks like DDP; distgan turns off the
  gradient clipping accelerate would otherwise default to (1.0), so the updates are the
  DDP updates (tested within 1e-5).
- A non-finite gradient norm makes DeepSpeed skip the step on every rank (fp32, bf16 with
  its default `check_grad_overflow`, and fp16, where each engine has its own loss scaler);
  `engine.optimizer.overflow` tells the non-finite guard.

Not available under DeepSpeed, refused before any work: ZeRO-3, `loss.name=wgan` (weight
clipping edits parameters that ZeRO overwrites from its fp32 master copy) and `train.compile`.
A ZeRO checkpoint written at another world size is resumed through DeepSpeed's universal
checkpoint (distgan.training.backends.zero_reshard).
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.utils import DeepSpeedPlugin
from torch import Tensor, nn

from distgan import compat
from distgan.config import Config
from distgan.errors import CheckpointError, DistganError
from distgan.losses import PhaseNetworks
from distgan.training.backends.accelerator import make_accelerator
from distgan.training.backends.base import Backend
from distgan.training.backends.zero_reshard import needs_reshard, prepare_reshard, resharded_view
from distgan.training.checkpoint import GENERATOR_ENGINE_DIR, written_by_deepspeed
from distgan.training.nonfinite import NonFiniteGuard

PLUGIN_D, PLUGIN_G = "d", "g"


def deepspeed_requested() -> bool:
    """True under `accelerate launch` with a DeepSpeed config (or `--use_deepspeed`)."""
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"


class DeepSpeedBackend(Backend):
    name = "deepspeed"
    allows_channels_last = False

    def __init__(self, cfg: Config, accelerator: Accelerator | None = None) -> None:
        check_supported(cfg)  # before any process group or engine exists
        self.cfg = cfg
        self.accelerator = accelerator or make_accelerator(cfg, deepspeed_plugins=deepspeed_plugins())
        adopt_deepspeed_world(self.accelerator)
        self.fp16 = self.accelerator.mixed_precision == "fp16"
        self.reshard = False  # engines that load universal checkpoints (see accept_checkpoint)

    def prepare(self, generator, discriminator, opt_g, opt_d) -> None:
        """D's engine on the main Accelerator, G's on a second one sharing its state."""
        acc, cfg = self.accelerator, self.cfg
        state = acc.state
        if self.reshard:  # read from the engine config: before the engines exist
            prepare_reshard(state.deepspeed_plugins.values())
        micro_batch = cfg.train.batch_size // (acc.num_processes * cfg.train.grad_accum)
        for plugin in state.deepspeed_plugins.values():
            config = plugin.deepspeed_config
            config["train_micro_batch_size_per_gpu"] = micro_batch
            config["gradient_accumulation_steps"] = cfg.train.grad_accum
            config["train_batch_size"] = cfg.train.batch_size
            if plugin.is_auto("gradient_clipping"):
                config["gradient_clipping"] = 0.0  # DDP path does not clip: same updates
            config.setdefault("steps_per_print", 10**9)
        state.select_deepspeed_plugin(PLUGIN_D)
        self.D, opt_d = acc.prepare(discriminator, opt_d)
        self.accelerator_g = Accelerator()  # shares the state, and so the accumulation counter
        self.accelerator_g.state.select_deepspeed_plugin(PLUGIN_G)
        self.G, opt_g = self.accelerator_g.prepare(generator, opt_g)
        state.select_deepspeed_plugin(PLUGIN_D)
        self.optimizers = {"g": opt_g, "d": opt_d}
        self.G_plain, self.D_plain = acc.unwrap_model(self.G), acc.unwrap_model(self.D)
        # bf16/fp16 ZeRO holds the weights themselves in that type (no autocast): inputs follow.
        self.input_dtype = next(self.G_plain.parameters()).dtype

    def networks(self) -> PhaseNetworks:
        # The engine's forward ties its output to the engine's backward bookkeeping: the G phase
        # and the penalties' autograd.grad go through D's plain module instead.
        return PhaseNetworks(
            G=self.G, D=self.D, D_frozen=self.D_plain, D_penalty=self.D_plain, loss_scale=lambda phase: None
        )

    def backward(self, phase: str, loss: Tensor) -> None:
        # Each engine is tied to its own Accelerator; its step runs inside backward at the boundary.
        (self.accelerator if phase == "d" else self.accelerator_g).backward(loss)

    def step(self, phase: str, guard: NonFiniteGuard, want_grad_norm: bool) -> dict[str, Tensor]:
        engine = self.D if phase == "d" else self.G
        device = self.accelerator.device
        stats = {f"grad_norm_{phase}": engine_grad_norm(engine, device)} if want_grad_norm else {}
        # The engine has stepped already, skipping a non-finite gradient norm on every rank itself.
        found = torch.full((), float(compat.engine_overflowed(engine)), device=device)
        guard.record(phase, found, scaled=self.fp16)
        return stats

    def accept_checkpoint(self, path: Path) -> None:
        if not written_by_deepspeed(path):
            raise CheckpointError(
                f"checkpoint {path} was written without DeepSpeed; resume it with a DDP "
                f"accelerate config, or start a new output_dir"
            )
        # ZeRO state of another world size: the engines must be built to load it converted, and
        # then load every checkpoint (a rollback's too) through the converted view.
        self.reshard = needs_reshard(path, self.accelerator.num_processes)

    def save(self, directory: Path) -> None:
        # The two Accelerators' file names would collide: G's engine in a subdirectory.
        self.accelerator.save_state(str(directory), safe_serialization=True)
        self.accelerator_g.save_state(str(directory / GENERATOR_ENGINE_DIR))

    def load(self, directory: Path) -> None:
        view = resharded_view(self.accelerator, directory, directory.parent) if self.reshard else nullcontext(directory)
        with view as source:
            self.accelerator.load_state(str(source))
            self.accelerator_g.load_state(str(source / GENERATOR_ENGINE_DIR))

    def describe(self) -> str:
        return (
            f"DeepSpeed ZeRO-{self.accelerator.state.deepspeed_plugin.zero_stage}, one engine per network, "
            f"{str(self.input_dtype).removeprefix('torch.')} weights"
        )


def check_supported(cfg: Config) -> None:
    """What cannot run under DeepSpeed, as one line, before the networks are built."""
    if cfg.loss.name == "wgan":
        raise DistganError(
            "loss.name=wgan clips D's weights in place, which ZeRO overwrites from its fp32 "
            "master copy; use loss.name=wgan-gp with DeepSpeed, or a DDP accelerate config"
        )
    if cfg.train.compile:
        raise DistganError(
            "train.compile=true is not supported with DeepSpeed; set train.compile=false or use a DDP accelerate config"
        )
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise DistganError(
            'the accelerate config asks for DeepSpeed, which is not installed: pip install "distgan[deepspeed]"'
        ) from None


def deepspeed_plugins() -> dict[str, DeepSpeedPlugin]:
    """One plugin per network, both from the accelerate config (zero stage, offload, ...)."""
    plugins = {PLUGIN_D: DeepSpeedPlugin(), PLUGIN_G: DeepSpeedPlugin()}
    for plugin in plugins.values():
        if plugin.zero_stage not in (1, 2):
            raise DistganError(
                f"DeepSpeed zero_stage {plugin.zero_stage} is not supported: G and D are "
                f"trained with ZeRO-1 or ZeRO-2 (accelerate_configs/deepspeed_zero1.yaml, "
                f"deepspeed_zero2.yaml)"
            )
    return plugins


def adopt_deepspeed_world(accelerator: Accelerator) -> None:
    """On CPU, take the world size and rank from the process group DeepSpeed formed.

    accelerate knows no distributed backend for the CPU device outside its MULTI_CPU mode,
    which excludes DeepSpeed, so it reports 1 process and rank 0 on every rank even though
    DeepSpeed has joined them all with gloo. (On GPUs it reports them right; then this does
    nothing.)
    """
    if not (dist.is_available() and dist.is_initialized()) or accelerator.num_processes == dist.get_world_size():
        return
    compat.adopt_world(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))


def engine_grad_norm(engine: nn.Module, device: torch.device) -> Tensor:
    """The global gradient norm of the engine's last step (DeepSpeed has already reduced it)."""
    norm = engine.get_global_grad_norm()
    # On the device: the meter stacks it with the other device-side stats.
    return torch.as_tensor(float("nan") if norm is None else norm, dtype=torch.float32, device=device)
