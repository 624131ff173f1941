"""The training loop: scheduling, EMA and I/O. What each phase computes lives in distgan.losses.

One step = `n_critic` D updates then one G update, each over `grad_accum` micro-batches.
Phase rules (see docs in README "Distributed semantics"): models are prepared with every
parameter trainable; the D phase sees detached fakes; the G phase runs with all of D
frozen so no D gradient hook or all-reduce fires; only the optimizer of the phase steps.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import save_file
from torch import Tensor, nn
from tqdm.auto import tqdm

from distgan.config import Config
from distgan.data import build_dataset, to_float_images
from distgan.errors import CheckpointError, NonFiniteError
from distgan.evaluation.curves import draw_curves
from distgan.losses import build_loss
from distgan.models import build_models
from distgan.models.checks import has_batch_stats
from distgan.models.sync_bn import convert_sync_batchnorm
from distgan.training import checkpoint
from distgan.training.batches import real_batches
from distgan.training.consistency import check_ranks_agree
from distgan.training.deepspeed_engines import (GENERATOR_ENGINE_DIR, check_checkpoint_fits, check_supported,
                                                 engine_grad_norm, engine_skipped, prepare_engines, uses_deepspeed)
from distgan.training.ema import GeneratorEMA
from distgan.training.metrics import DeviceMeter, JsonlLog
from distgan.training.noise import GlobalNoise, mix_seed
from distgan.training.nonfinite import NonFiniteGuard, Verdict
from distgan.training.precision import PhaseScalers
from distgan.training.preemption import PreemptionWatch
from distgan.training.setup import make_accelerator, make_optimizer
from distgan.training.speed import channels_last_images, compile_forward, eager_if, to_channels_last, wants_channels_last
from distgan.training.state import TrainState
from distgan.training.tracking import log_sample_grid, log_scalars, start_tracking
from distgan.training.zero_reshard import needs_reshard, resharded_view
from distgan.utils.images import save_image_grid

# Keys that separate the noise streams of the phases (see distgan.training.noise).
PHASE_D, PHASE_G, PHASE_GP = 0, 1, 2
SAMPLE_GRID_SIZE = 64


class Trainer:
    def __init__(self, cfg: Config, accelerator: Accelerator | None = None) -> None:
        self.cfg = cfg
        self.accelerator = acc = accelerator or make_accelerator(cfg)
        cfg.check_world(acc.num_processes)
        self.deepspeed = uses_deepspeed(acc)
        if self.deepspeed and accelerator is not None:  # make_accelerator checks its own before any work
            check_supported(cfg)
        self.fp16 = acc.mixed_precision == "fp16"
        self.out = Path(cfg.output_dir)
        self.checkpoint_root = self.out / "checkpoints"
        resume_from = checkpoint.resolve_resume(cfg.train.resume, self.checkpoint_root)
        # ZeRO state of another world size: the engines must be built to load it converted.
        self.reshard = self.deepspeed and needs_reshard(resume_from, acc.num_processes)

        self.dataset = build_dataset(cfg.data)
        self.channels, self.resolution, _ = self.dataset[0]["image"].shape
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        nets = build_models(cfg.model, channels=self.channels, resolution=self.resolution)
        self.z_dim = nets.z_dim
        if cfg.model.sync_bn:
            if not (has_batch_stats(nets.generator) or has_batch_stats(nets.discriminator)):
                acc.print("distgan: note: model.sync_bn=true but neither network has BatchNorm layers")
            nets.generator = convert_sync_batchnorm(nets.generator, acc.device)
            nets.discriminator = convert_sync_batchnorm(nets.discriminator, acc.device)
        # ZeRO flattens the weights into one contiguous buffer, which undoes an NHWC layout.
        self.channels_last = not self.deepspeed and wants_channels_last(
            cfg.train.channels_last, acc.device, nets.generator, nets.discriminator)
        if self.channels_last:
            to_channels_last(nets.generator, nets.discriminator)
        opt_g = make_optimizer(nets.generator, cfg.optim.g, acc.device)
        opt_d = make_optimizer(nets.discriminator, cfg.optim.d, acc.device)
        if self.deepspeed:  # one engine per network, G's on a second Accelerator
            engines = prepare_engines(acc, cfg, nets.generator, nets.discriminator, opt_g, opt_d, self.reshard)
            self.G, self.D, self.opt_g, self.opt_d = engines.G, engines.D, engines.opt_g, engines.opt_d
            self.accelerator_g = engines.accelerator_g
        else:
            self.G, self.D, self.opt_g, self.opt_d = acc.prepare(nets.generator, nets.discriminator, opt_g, opt_d)
            self.accelerator_g = acc
        # The same parameters, without the DDP/autocast wrappers.
        self.G_plain, self.D_plain = acc.unwrap_model(self.G), acc.unwrap_model(self.D)
        # A DeepSpeed engine's forward hooks its output into that engine's backward bookkeeping,
        # which must not run for D in the G phase nor for R1 / GP's autograd.grad: those go
        # through D's plain module (see distgan.training.deepspeed_engines).
        self.D_in_g_phase = self.D_plain if self.deepspeed else self.D
        self.penalty_net = self.D_plain if self.deepspeed else None
        # DeepSpeed bf16/fp16 holds the weights themselves in that type (no autocast): inputs follow.
        self.input_dtype = next(self.G_plain.parameters()).dtype if self.deepspeed else torch.float32
        if self.deepspeed:
            acc.print(f"distgan: DeepSpeed ZeRO-{acc.state.deepspeed_plugin.zero_stage}, one engine per network, "
                      f"{str(self.input_dtype).removeprefix('torch.')} weights")
        self.ema = GeneratorEMA(self.G_plain, cfg.ema).to(acc.device)
        if cfg.train.compile:  # after the EMA copy, which must stay a plain module
            compile_forward(self.G_plain, self.D_plain, backend=cfg.train.compile_backend)
        self.loss = build_loss(cfg.loss)
        self.state = TrainState()
        self.scalers = PhaseScalers(acc)
        self.guard = NonFiniteGuard(cfg.train.on_nonfinite, cfg.train.nonfinite_patience, acc.device)
        acc.register_for_checkpointing(self.ema, self.state, self.scalers)
        if resume_from is not None:
            self._load_checkpoint(resume_from)
            acc.print(f"distgan: resumed from {resume_from} at step {self.state.step}")
        self.noise = GlobalNoise(cfg.seed, cfg.train.batch_size, cfg.train.grad_accum,
                                 acc.process_index, acc.num_processes, acc.device)
        self._start_streams()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.sample_z = torch.randn(SAMPLE_GRID_SIZE, self.z_dim, generator=gen).to(acc.device)
        self.meter = DeviceMeter()
        self.log = None
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "config.yaml").write_text(cfg.to_yaml())
            self.log = JsonlLog(self.out / "metrics.jsonl", resume_step=self.state.step)
        start_tracking(acc, cfg, self.state)
        self.evaluation = None
        if cfg.eval.every:  # builds the extractor now: a wrong eval.inception fails before training
            from distgan.evaluation.during_training import TrainingEvaluation

            self.evaluation = TrainingEvaluation(self)

    def _load_checkpoint(self, path: Path) -> None:
        check_checkpoint_fits(path, self.deepspeed)
        view = resharded_view(self.accelerator, path, self.checkpoint_root) if self.reshard else nullcontext(path)
        with view as source:
            try:
                self.accelerator.load_state(str(source))
                if self.deepspeed:
                    self.accelerator_g.load_state(str(source / GENERATOR_ENGINE_DIR))
            except Exception as err:  # a torn or foreign file: say which checkpoint, keep it on disk
                raise CheckpointError(
                    f"checkpoint {path} cannot be loaded ({type(err).__name__}: {str(err).splitlines()[0]}); "
                    f"resume from an older one with train.resume=PATH") from err

    def _save_state(self, directory: str) -> None:
        """Everything a resume needs into `directory`; under DeepSpeed, G's engine in a subdirectory
        (the two Accelerators' file names would collide)."""
        self.accelerator.save_state(directory, safe_serialization=True)
        if self.deepspeed:
            self.accelerator_g.save_state(str(Path(directory) / GENERATOR_ENGINE_DIR))

    def _start_streams(self) -> None:
        """The data stream from the state's position; after a rollback, a fresh noise stream."""
        cfg = self.cfg
        self.loader = real_batches(self.dataset, cfg, self.accelerator, self.state.data_position)
        self.noise.seed = mix_seed(cfg.seed, self.state.rollbacks) if self.state.rollbacks else cfg.seed

    # ---- one step ---------------------------------------------------------------------
    def train_step(self, next_real: Callable[[], Tensor], want_grad_norms: bool = False) -> None:
        cfg, acc, state = self.cfg, self.accelerator, self.state
        n_critic, accum = cfg.train.n_critic, cfg.train.grad_accum
        for k in range(n_critic):
            d_step = state.step * n_critic + k
            apply_r1 = self.loss.r1_due(d_step)
            differentiates_twice = apply_r1 or self.loss.uses_gradient_penalty
            self.scalers.use("d")
            for micro in range(accum):
                real = next_real().to(self.input_dtype)
                with acc.accumulate(self.G, self.D), eager_if(differentiates_twice and cfg.train.compile):
                    z = self.noise.normal((d_step, PHASE_D), (self.z_dim,), micro).to(self.input_dtype)
                    with torch.no_grad():
                        fake = self.G(z)
                    out = self.loss.discriminator(
                        self.D, real, fake, apply_r1=apply_r1, grad_scale=self.scalers.scale("d"),
                        draw_uniform=lambda shape, m=micro: self.noise.uniform((d_step, PHASE_GP), shape, m),
                        penalty_net=self.penalty_net,
                    )
                    acc.backward(out.loss)
                    self.guard.note_loss(out.loss)
                    if acc.sync_gradients:
                        self._step(self.opt_d, self.D, "d", want_grad_norms and k == n_critic - 1, out.stats)
                    self.opt_d.zero_grad(set_to_none=True)
                self.meter.add(out.stats)
            self.loss.after_discriminator_step(self.D)

        self.D.requires_grad_(False)
        self.scalers.use("g")
        for micro in range(accum):
            with acc.accumulate(self.G, self.D):
                z = self.noise.normal((state.step, PHASE_G), (self.z_dim,), micro).to(self.input_dtype)
                out = self.loss.generator(self.D_in_g_phase, self.G(z))
                self.accelerator_g.backward(out.loss)  # under DeepSpeed: G's engine, not D's
                self.guard.note_loss(out.loss)
                if acc.sync_gradients:
                    self._step(self.opt_g, self.G, "g", want_grad_norms, out.stats)
                self.opt_g.zero_grad(set_to_none=True)
            self.meter.add(out.stats)
        self.D.requires_grad_(True)

        self.guard.end_step()
        state.step += 1
        state.data_position += n_critic * cfg.train.batch_size
        self.ema.update(self.G_plain, state.step * cfg.train.batch_size, cfg.train.batch_size)

    def _step(self, optimizer: torch.optim.Optimizer, model: nn.Module, phase: str, want_grad_norm: bool,
              stats: dict[str, Tensor]) -> None:
        """The phase's optimizer step, skipped on the device when a value is not finite."""
        if self.deepspeed:  # the engine stepped inside backward and skipped a non-finite step itself
            if want_grad_norm:
                stats[f"grad_norm_{phase}"] = engine_grad_norm(model)
            self.guard.after_engine_step(phase, engine_skipped(model), scaled=self.fp16)
            return
        if want_grad_norm:
            stats[f"grad_norm_{phase}"] = self._grad_norm(optimizer, model, phase)
        inner = optimizer.optimizer  # the torch optimizer inside accelerate's wrapper
        self.guard.before_step(inner, phase, scaled=self.scalers.enabled)
        if self.scalers.enabled:
            self.scalers.step(phase, inner)
        else:
            inner.step()
        self.guard.after_step(inner)

    def real_images(self) -> Callable[[], Tensor]:
        """The "next real batch" of `train_step`: this rank's float images in [-1, 1]."""
        batches = iter(self.loader)  # once: a new iter() would restart the stream
        channels_last = self.channels_last

        def next_real() -> Tensor:
            images = to_float_images(next(batches)["image"])
            return channels_last_images(images) if channels_last else images

        return next_real


    def _grad_norm(self, optimizer: torch.optim.Optimizer, model: nn.Module, phase: str) -> Tensor:
        if self.scalers.enabled:
            self.scalers.scalers[phase].unscale_(optimizer.optimizer)
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))

    # ---- the run ----------------------------------------------------------------------
    def run(self) -> Path:
        cfg, acc, state = self.cfg, self.accelerator, self.state
        total = cfg.train.steps
        acc.print(f"distgan: {acc.num_processes} process(es), writing to {self.out.resolve()} "
                  f"(config.yaml, metrics.jsonl, samples/, checkpoints/, final/)")
        next_real = self.real_images()
        bar = tqdm(total=total, initial=state.step, unit="step", dynamic_ncols=True,
                   disable=not (acc.is_main_process and cfg.train.progress))
        tick, tick_images = time.perf_counter(), state.data_position
        watch, saved_step = PreemptionWatch(acc), -1
        while state.step < total:
            last = state.step + 1 == total
            log_now = (state.step + 1) % cfg.train.log_every == 0 or last
            self.train_step(next_real, want_grad_norms=log_now)
            bar.update(1)
            step = state.step
            checkpoint_now = cfg.train.checkpoint_every and (step % cfg.train.checkpoint_every == 0 or last)
            if log_now or checkpoint_now:
                # Never write a checkpoint before the non-finite verdict on the steps it holds.
                verdict = self.guard.verdict(acc)
                if verdict.action != "continue":
                    self._act_on(verdict, step)
                    next_real = self.real_images()
                    bar.reset(total=total)
                    bar.update(state.step)
                    continue
            if log_now:
                row = self.meter.reduce(acc)  # the only host sync of the interval
                now = time.perf_counter()
                row = {"step": step, "kimg": state.data_position / 1000, **row,
                       **{f"skipped_{p}": n for p, n in verdict.nonfinite.items()},
                       **({f"overflow_{p}": n for p, n in verdict.overflows.items()} if self.fp16 else {}),
                       "img_per_s": (state.data_position - tick_images) / max(now - tick, 1e-9)}
                if torch.cuda.is_available():
                    row["gpu_mem_gib"] = torch.cuda.max_memory_allocated(acc.device) / 2**30
                tick, tick_images = now, state.data_position
                if self.log is not None:
                    self.log.write(row)
                    bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}",
                                    img_s=f"{row['img_per_s']:.0f}", refresh=False)
                log_scalars(acc, row, step)
            if cfg.train.consistency_check_every and step % cfg.train.consistency_check_every == 0:
                check_ranks_agree(acc, {"generator": self.G_plain, "discriminator": self.D_plain,
                                        "generator_ema": self.ema.generator}, step)
            if cfg.train.sample_every and (step % cfg.train.sample_every == 0 or last):
                self.save_samples(step)
            if self.evaluation is not None and (step % cfg.eval.every == 0 or last):
                tick += self.evaluation.run(step)  # evaluation time is not training throughput
            if checkpoint_now:
                checkpoint.save_checkpoint(acc, self.checkpoint_root, step, cfg.train.keep_checkpoints, self._save_state)
                saved_step = step
            if not last and (received := watch.stop_requested()):
                bar.close()
                return self.stop_early(watch, received, saved_step)
        watch.close()
        bar.close()
        self.save_final()
        for tracker in acc.trackers:
            tracker.finish()
        # Not end_training(): it leaves the process group while DDP still holds it; the caller
        # leaves it once the models are gone (distgan.train).
        acc.wait_for_everyone()
        acc.print(f"distgan: done at step {state.step}; outputs in {self.out.resolve()}")
        return self.out

    def _act_on(self, verdict: Verdict, step: int) -> None:
        """A rollback or a stop, decided identically on every rank (see NonFiniteGuard)."""
        acc = self.accelerator
        newest = checkpoint.list_checkpoints(self.checkpoint_root)
        if verdict.action == "rollback" and newest:
            target = newest[-1]
            rollbacks = self.state.rollbacks + 1
            self._load_checkpoint(target)
            self.state.rollbacks = rollbacks
            self.guard.reset_consecutive()
            self.meter.clear()
            self._start_streams()
            acc.print(f"distgan: {verdict.reason} at step {step}; rolled back to {target.name} "
                      f"(rollback {rollbacks}, fresh noise stream)")
            if self.log is not None:
                self.log.rewind(self.state.step)
                self.log.write({"step": self.state.step, "event": "rollback", "from_step": step,
                                "reason": verdict.reason, "rollbacks": rollbacks})
            return
        kept = f"newest checkpoint kept: {newest[-1]}" if newest else "no checkpoint to roll back to yet"
        raise NonFiniteError(f"{verdict.reason} at step {step} (train.on_nonfinite={self.cfg.train.on_nonfinite}); "
                             f"{kept}; lower optim.g.lr/optim.d.lr, add loss.r1_gamma, or use "
                             f"train.on_nonfinite=rollback with train.checkpoint_every")

    def stop_early(self, watch: PreemptionWatch, received: signal.Signals, saved_step: int) -> Path:
        """Preempted: checkpoint this step on every rank, requeue on the requeue signal, return."""
        acc, step = self.accelerator, self.state.step
        if saved_step != step:
            verdict = self.guard.verdict(acc)  # judged before it is saved, as in run()
            if verdict.action == "stop":
                self._act_on(verdict, step)
            # A due rollback needs no checkpoint: the requeued job resumes from its target.
            if verdict.action == "continue":
                checkpoint.save_checkpoint(acc, self.checkpoint_root, step, self.cfg.train.keep_checkpoints,
                                           self._save_state)
        for tracker in acc.trackers:
            tracker.finish()
        if "wandb" in sys.modules:  # stop its service now: the requeue's SIGTERM would kill it mid-teardown
            sys.modules["wandb"].teardown()
        acc.wait_for_everyone()  # every rank is past the checkpoint before the requeue kills the steps
        if acc.is_main_process:
            status = watch.requeue() if received == watch.requeue_signal else "not requeued (SIGTERM)"
            print(f"distgan: stopped at step {step} on {received.name}: checkpoint "
                  f"{self.checkpoint_root / f'step_{step}'} written; {status}", flush=True)
        return self.out

    def save_samples(self, step: int) -> Path | None:
        """A fixed-noise grid from the EMA generator, drawn on the main process only.

        The EMA copy is a plain module, so no DDP collective runs here (a forward through
        the wrapped G on one rank would hang in its buffer broadcast).
        """
        if not self.accelerator.is_main_process:
            return None
        with torch.no_grad():
            images = self.ema(self.sample_z)
        path = save_image_grid(images, self.out / "samples" / f"step_{step}.png")
        log_sample_grid(self.accelerator, path, step)
        if self.log is not None and self.log.path.is_file():
            draw_curves(self.log.path, self.out / "curves.png")
        return path

    def save_final(self, final: Path | None = None) -> None:
        """G, EMA G and D as safetensors into `final` (default `<output_dir>/final`). Call on every rank."""
        acc = self.accelerator
        acc.wait_for_everyone()
        if not acc.is_main_process:
            return
        final = final or self.out / "final"
        final.mkdir(parents=True, exist_ok=True)
        metadata = {"distgan_config": self.cfg.to_yaml(), "step": str(self.state.step),
                    "channels": str(self.channels), "resolution": str(self.resolution)}
        nets = {"generator": self.G_plain, "generator_ema": self.ema.generator,
                "discriminator": self.D_plain}
        for name, net in nets.items():
            tensors = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.cpu().contiguous()
                       for k, v in net.state_dict().items()}
            save_file(tensors, str(final / f"{name}.safetensors"), metadata={**metadata, "network": name})
