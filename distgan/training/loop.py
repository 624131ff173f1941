"""The training loop: scheduling, EMA and I/O. What each phase computes lives in distgan.losses.

One step runs the phases of `training_phases`: `n_critic` D updates, then one G update, each
over `grad_accum` micro-batches; a phase that reads data takes the next global micro-batches.
How the networks are wrapped, stepped, scaled and saved is the backend's
(distgan.training.backends); the periodic work after a step is hooks'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from torch import Tensor, nn
from torch.utils.data import Dataset

from distgan.augment import build_augmentation
from distgan.config import Config
from distgan.data import build_dataset, to_float_images
from distgan.data.labels import class_count
from distgan.errors import CheckpointError, DistganError, ModelError
from distgan.losses import Batch, Objective
from distgan.models.conditioning import class_metadata
from distgan.training import checkpoint, environment, hooks, run_config
from distgan.training.backends import make_backend
from distgan.training.backends.accelerator import make_optimizer
from distgan.training.batches import real_batches
from distgan.training.ema import GeneratorEMA
from distgan.training.export import cpu_state, save_networks
from distgan.training.metrics import DeviceMeter, JsonlLog
from distgan.training.networks import networks_to_train
from distgan.training.noise import GlobalNoise, mix_seed
from distgan.training.nonfinite import NonFiniteGuard
from distgan.training.output_dir import check_free_space, check_writable, checkpoint_bytes
from distgan.training.phases import Phase, real_images_per_step, training_phases
from distgan.training.preemption import PreemptionWatch
from distgan.training.schedules import Schedules
from distgan.training.speed import channels_last_images, compile_forward, eager_if
from distgan.training.state import TrainState
from distgan.training.tracking import check_tracker, start_tracking

SAMPLE_GRID_SIZE = 64
GRID_COLUMNS_PER_CLASS = 8
MAX_GRID_CLASSES = 16
# Noise streams of the fakes' classes, one per phase (distgan.training.noise keys: step, stream).
FAKE_LABEL_STREAM = 8


def sample_grid_inputs(seed: int, z_dim: int, num_classes: int, device: torch.device) -> tuple[Tensor, Tensor | None]:
    """The sample grid's fixed latents, and for a conditional run its classes: one row of
    `GRID_COLUMNS_PER_CLASS` images per class (the first `MAX_GRID_CLASSES` classes)."""
    gen = torch.Generator().manual_seed(seed)
    if not num_classes:
        return torch.randn(SAMPLE_GRID_SIZE, z_dim, generator=gen).to(device), None
    rows = min(num_classes, MAX_GRID_CLASSES)
    z = torch.randn(rows * GRID_COLUMNS_PER_CLASS, z_dim, generator=gen).to(device)
    return z, torch.arange(rows, device=device).repeat_interleave(GRID_COLUMNS_PER_CLASS)


class Trainer:
    """Trains G and D as `cfg` says. Your own `generator` and `discriminator` (G: [N, model.z_dim] ->
    [N, C, R, R] in [-1, 1]; D: images -> [N] logits), optimizers and `dataset` (items
    `{"image": uint8 [C, R, R], "label": int64 []}`) replace the configured ones."""

    def __init__(
        self,
        cfg: Config,
        accelerator: Accelerator | None = None,
        *,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        opt_g: torch.optim.Optimizer | None = None,
        opt_d: torch.optim.Optimizer | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        if (generator is None) != (discriminator is None):
            raise ModelError("Trainer: give both generator= and discriminator=, or neither to build model.name")
        check_tracker(cfg)
        self.cfg = cfg
        self.backend = backend = make_backend(cfg, accelerator)
        self.accelerator = acc = backend.accelerator
        cfg.check_world(acc.num_processes)
        self.out, self.checkpoint_root = Path(cfg.output_dir), Path(cfg.output_dir) / "checkpoints"
        resume_from = checkpoint.resolve_resume(cfg.train.resume, self.checkpoint_root)
        # Before anything is built or written: a changed experiment never relabels this run.
        self.config_changes = run_config.check_continuation(cfg, self.out, resume_from)
        check_writable(acc, self.out)
        if resume_from is not None:
            backend.accept_checkpoint(resume_from)
        self.dataset = dataset if dataset is not None else build_dataset(cfg.data)
        self.num_classes = class_count(self.dataset, cfg.data) if cfg.data.conditional else 0
        if hasattr(self.dataset, "describe"):  # the first line of a run names the data
            classes = f", {self.num_classes} classes (conditional)" if self.num_classes else ""
            acc.print(f"distgan: data: {self.dataset.describe()}{classes}")
        self.channels, self.resolution, _ = self.dataset[0]["image"].shape
        nets, self.channels_last = networks_to_train(
            cfg, backend, self.channels, self.resolution, generator, discriminator, self.num_classes
        )
        self.z_dim = nets.z_dim
        check_free_space(acc, self.out, checkpoint_bytes(nets.generator, nets.discriminator))
        opt_g = opt_g or make_optimizer(nets.generator, cfg.optim.g, acc.device)
        opt_d = opt_d or make_optimizer(nets.discriminator, cfg.optim.d, acc.device)
        backend.prepare(nets.generator, nets.discriminator, opt_g, opt_d)
        self.G_plain, self.D_plain = backend.G_plain, backend.D_plain
        if backend.describe():
            acc.print(f"distgan: {backend.describe()}")
        self.ema = GeneratorEMA(self.G_plain, cfg.ema).to(acc.device)
        if cfg.train.compile:  # after the EMA copy, which must stay a plain module
            compile_forward(self.G_plain, self.D_plain, backend=cfg.train.compile_backend)
        images_per_step = cfg.train.batch_size * cfg.train.n_critic
        self.augment = build_augmentation(cfg.aug, images_per_step, acc.device)
        self.objective = Objective(cfg.loss, backend.networks(), self.augment)
        # Before a resume loads optimizer states: the configured values are the schedules' starts.
        self.schedules = Schedules(cfg, [backend.optimizers["g"], backend.optimizers["d"]], self.objective, self.ema)
        self.phases = training_phases(cfg.train.n_critic, g_reads_data=self.objective.terms.needs_real_in_g)
        self.state = TrainState()
        self.guard = NonFiniteGuard(
            cfg.train.on_nonfinite, cfg.train.nonfinite_patience, acc.device, fp16=acc.mixed_precision == "fp16"
        )
        if resume_from is not None:
            self.load_checkpoint(resume_from)
            acc.print(f"distgan: resumed from {resume_from} at step {self.state.step}")
        if self.config_changes:
            acc.print(
                f"distgan: continuing with {run_config.describe_changes(self.config_changes)} "
                f"(recorded in {run_config.CHANGES_FILE})"
            )
        self.noise = GlobalNoise(
            cfg.seed, cfg.train.batch_size, cfg.train.grad_accum, acc.process_index, acc.num_processes, acc.device
        )
        self._start_streams()
        self.sample_z, self.sample_labels = sample_grid_inputs(cfg.seed, self.z_dim, self.num_classes, acc.device)
        self.meter, self.log = DeviceMeter(), None
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            environment.describe_run(self.out, cfg, acc, self.state.step)
            run_config.record_changes(self.out, self.state.step, self.config_changes)
            self.log = JsonlLog(self.out / "metrics.jsonl", resume_step=self.state.step)
        start_tracking(acc, cfg, self.state)
        self.clock = hooks.Stopwatch(self.state.data_position)
        self.evaluation = None
        if cfg.eval.every:  # builds the extractor now: a wrong eval.inception fails before training
            from distgan.evaluation.during_training import TrainingEvaluation

            self.evaluation = TrainingEvaluation(
                *(acc, cfg, self.out, self.ema.generator, self.z_dim, self.state, self.log, self.save_final),
                *(self.clock, self.num_classes),
            )

    # ---- checkpoints: the backend's files plus the EMA and the counters, by name -------------------
    def load_checkpoint(self, path: Path) -> None:
        if not (path / checkpoint.STATE_FILE).is_file():
            raise CheckpointError(
                f"checkpoint {path} has no {checkpoint.STATE_FILE}: it was written by a distgan "
                f"before 0.2; finish that run with the distgan that started it, or start a new output_dir"
            )
        # The EMA file has G's keys whatever the backend; model_1 is D, prepared second (DDP only).
        nets = {"G": (checkpoint.EMA_FILE, self.ema.generator), "D": ("model_1.safetensors", self.D_plain)}
        try:
            if mismatch := checkpoint.architecture_mismatch(path, nets):
                raise CheckpointError(mismatch)
            self.backend.load(path)
            self.ema.generator.load_state_dict(load_file(str(path / checkpoint.EMA_FILE)))  # copied to its device
            self.state.load_state_dict(json.loads((path / checkpoint.STATE_FILE).read_text()))
            if self.augment is not None:
                self.augment.load_state(self.state)
        except DistganError:
            raise
        except Exception as err:  # a torn or foreign file: say which checkpoint, keep it on disk
            raise CheckpointError(
                f"checkpoint {path} cannot be loaded ({type(err).__name__}: {str(err).strip().splitlines()[0]}); "
                f"resume from an older one with train.resume=PATH"
            ) from err

    def _write_checkpoint(self, directory: str) -> None:
        directory = Path(directory)
        self.backend.save(directory)
        if self.augment is not None:  # every process: the controller's sums are reduced into the state
            self.augment.save_state(self.state, self.accelerator)
        if self.accelerator.is_main_process:
            save_file(cpu_state(self.ema.generator), str(directory / checkpoint.EMA_FILE), self.class_metadata())
            (directory / checkpoint.STATE_FILE).write_text(json.dumps(self.state.state_dict()))
            (directory / run_config.CONFIG_FILE).write_text(self.cfg.to_yaml())

    def class_metadata(self) -> dict[str, str]:
        """What a loader needs to rebuild a conditional generator: the class count and names."""
        return class_metadata(self.num_classes, getattr(self.dataset, "classes", None) or [])

    def save_checkpoint(self, step: int) -> Path:
        return checkpoint.save_checkpoint(
            self.accelerator, self.checkpoint_root, step, self.cfg.train.keep_checkpoints, self._write_checkpoint
        )

    def _start_streams(self) -> None:
        """The data stream from the state's position; after a rollback, a fresh noise stream."""
        cfg = self.cfg
        self.loader = real_batches(self.dataset, cfg, self.accelerator, self.state.data_position)
        self.real = self._real_stream(self.loader)
        self.noise.seed = mix_seed(cfg.seed, self.state.rollbacks) if self.state.rollbacks else cfg.seed

    def _real_stream(self, loader) -> Iterator[tuple[Tensor, Tensor]]:
        for batch in loader:  # this rank's float images in [-1, 1] and their labels
            images = to_float_images(batch["image"]).to(self.backend.input_dtype)
            yield (channels_last_images(images) if self.channels_last else images), batch["label"]

    # ---- one step ---------------------------------------------------------------------------------
    def train_step(self, real: Iterator[tuple[Tensor, Tensor]] | None = None, want_grad_norms: bool = False) -> None:
        """One training step; `real` yields (images, labels) micro-batches (default: the data stream)."""
        cfg, backend, state = self.cfg, self.backend, self.state
        real = real if real is not None else self.real
        reals: list[tuple[Tensor, Tensor]] = []
        self.schedules.apply(state.data_position / 1000)
        for phase in self.phases:
            for repeat in range(phase.repeats):
                phase_step = state.step * phase.repeats + repeat
                if phase.reads_data:
                    reals = [next(real) for _ in range(cfg.train.grad_accum)]
                with (
                    backend.phase(phase.name),
                    eager_if(cfg.train.compile and self.objective.differentiates_twice(phase.name, phase_step)),
                ):
                    for micro, (images, labels) in enumerate(reals):
                        batch = self._batch(phase, phase_step, micro, images, labels)
                        self._micro_step(phase, phase_step, batch, want_grad_norms and repeat == phase.repeats - 1)
                self.objective.after_step(phase.name)
        self.guard.end_step()
        state.step += 1
        state.data_position += real_images_per_step(self.phases, cfg.train.batch_size)
        if self.augment is not None:
            self.augment.end_step(state.step, self.accelerator)
        self.ema.update(self.G_plain, state.step * cfg.train.batch_size, cfg.train.batch_size)

    def _batch(self, phase: Phase, phase_step: int, micro: int, images: Tensor, labels: Tensor) -> Batch:
        z = self.noise.normal((phase_step, phase.noise_stream), (self.z_dim,), micro).to(self.backend.input_dtype)
        uniform = lambda stream, shape: self.noise.uniform((phase_step, stream), shape, micro)  # noqa: E731
        if not self.num_classes:
            return Batch(real=images, real_labels=None, z=z, fake_labels=None, uniform=uniform)
        # The fakes' classes: uniform over the classes, drawn for the global batch like z.
        fake_labels = (uniform(FAKE_LABEL_STREAM + phase.noise_stream, ()) * self.num_classes).long()
        return Batch(real=images, real_labels=labels, z=z, fake_labels=fake_labels, uniform=uniform)

    def _micro_step(self, phase: Phase, phase_step: int, batch: Batch, want_grad_norm: bool) -> None:
        backend = self.backend
        with backend.accumulate():
            out = self.objective.loss(phase.name, batch, phase_step)
            backend.backward(phase.name, out.loss)
            self.guard.note_loss(out.loss)
            if backend.sync_gradients:
                out.stats.update(backend.step(phase.name, self.guard, want_grad_norm))
            backend.zero_grad(phase.name)
        self.meter.add(out.stats)

    # ---- the run ----------------------------------------------------------------------------------
    def run(self) -> Path:
        acc, state, train = self.accelerator, self.state, self.cfg.train
        acc.print(
            f"distgan: {acc.num_processes} process(es), writing to {self.out.resolve()} "
            f"(config.yaml, environment.jsonl, metrics.jsonl, samples/, checkpoints/, final/)"
        )
        progress = hooks.Progress(train.steps, state.step, enabled=acc.is_main_process and train.progress)
        nonfinite = hooks.NonFiniteCheck(self.guard, acc, train, self.checkpoint_root, self.rollback, self.log)
        augment_logged = self.augment.logged if self.augment is not None else dict
        log = hooks.LogMetrics(
            *(train.log_every, self.meter, acc, state, self.log, progress, nonfinite, self.clock),
            lambda: {**self.schedules.logged(), **augment_logged()},
        )
        checkpointing = hooks.Checkpointing(train.checkpoint_every, self.checkpoint_root, self.save_checkpoint)
        watch = PreemptionWatch(acc)
        networks = {"generator": self.G_plain, "discriminator": self.D_plain, "generator_ema": self.ema.generator}
        consistency = hooks.ConsistencyCheck(train.consistency_check_every, acc, networks)
        samples = hooks.SampleGrid(
            *(train.sample_every, acc, self.ema.generator, self.sample_z, self.out, self.log), self.sample_labels
        )
        evaluation = [self.evaluation] if self.evaluation else []
        preemption = hooks.Preemption(watch, acc, nonfinite, checkpointing)
        failures = hooks.WriteFailures()
        writers = [nonfinite, log, samples, *evaluation]
        stop_on_write_failure = hooks.StopOnWriteFailure(failures, writers, acc, nonfinite, checkpointing)
        run_hooks = [
            *(progress, nonfinite, log, consistency, samples, *evaluation, checkpointing),
            *(stop_on_write_failure, preemption),
        ]
        while state.step < train.steps:
            last = state.step + 1 == train.steps
            self.train_step(want_grad_norms=log.due(state.step + 1, last))
            if hooks.run_due(run_hooks, state.step, last, failures) == hooks.STOP:
                progress.close()
                return self.out
        watch.close()
        progress.close()
        self._save_final_or_stop()
        for tracker in acc.trackers:
            tracker.finish()
        # Not end_training(): it leaves the process group while DDP still holds it; the caller
        # leaves it once the models are gone (distgan.train).
        acc.wait_for_everyone()
        acc.print(f"distgan: done at step {state.step}; outputs in {self.out.resolve()}")
        return self.out

    def rollback(self, target: Path) -> int:
        """Back to checkpoint `target` with a fresh noise stream; returns the rollbacks so far."""
        rollbacks = self.state.rollbacks + 1
        self.load_checkpoint(target)
        self.state.rollbacks = rollbacks
        self.guard.reset_consecutive()
        self.meter.clear()
        self.clock.restart(self.state.data_position)
        self._start_streams()
        return rollbacks

    def _save_final_or_stop(self) -> None:
        """final/ at the end of the run; a failed write stops every rank with one line (the last
        checkpoint holds the run, and the same command writes final/ again)."""
        error = None
        try:
            self.save_final()
        except OSError as err:
            error = f"could not write {err.filename or self.out / 'final'} ({err.strerror or type(err).__name__})"
        if not checkpoint.all_ranks_ok(self.accelerator, error is None):
            raise DistganError(
                f"{error or 'the main process could not write final/'} at step {self.state.step}; the newest "
                f"checkpoint holds the run: free space or fix output_dir, then run the same command to write final/"
            )

    def save_final(self, final: Path | None = None) -> None:
        """G, EMA G and D as safetensors into `final` (default `<output_dir>/final`). Call on every rank."""
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:
            networks = {"generator": self.G_plain, "generator_ema": self.ema.generator, "discriminator": self.D_plain}
            run = {"distgan_config": self.cfg.to_yaml(), "step": self.state.step, **self.class_metadata()}
            save_networks(
                final or self.out / "final", networks, {**run, "channels": self.channels, "resolution": self.resolution}
            )
