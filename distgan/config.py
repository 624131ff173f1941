"""The run configuration: a typed schema, shipped presets, YAML files and dotted overrides.

`load_config(preset_or_yaml, ["train.steps=100", ...])` returns a validated `Config`.
Every problem (unknown key, wrong type, impossible value) raises `ConfigError` with one
line that names the key and what is allowed.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from distgan.errors import DistganError
from distgan.models.catalog import CATALOG, model_names

DEFAULT_PRESET = "mnist_dcgan"


class ConfigError(DistganError, ValueError):
    """A configuration problem, described in one line."""


class _Section(BaseModel):
    # Unknown keys are errors, and values are validated again when set after construction.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DataConfig(_Section):
    source: Literal["mnist", "imagefolder", "hf"] = "mnist"
    path: str | None = None
    split: str = "train"
    image_column: str = "image"
    label_column: str | None = "label"
    conditional: bool = False  # class-conditional G and D, trained on data.label_column
    num_classes: int | None = Field(None, ge=2)  # null: from the data (folder names, ClassLabel, largest label + 1)
    resolution: int = Field(32, ge=8)
    channels: Literal[1, 3] | None = None
    num_workers: int = Field(2, ge=0)
    in_memory: bool | Literal["auto"] = "auto"
    on_device: bool = True
    cache_dir: str | None = None


class ModelConfig(_Section):
    name: str = "dcgan"
    z_dim: int = Field(128, ge=1)
    g_width: int = Field(64, ge=1)
    d_width: int = Field(64, ge=1)
    g_norm: Literal["batch", "none"] = "batch"
    d_norm: Literal["none", "batch", "spectral"] = "none"
    class_embed_dim: int = Field(128, ge=1)  # conditional G: the class embedding concatenated to z
    sync_bn: bool | Literal["auto"] = "auto"  # auto: on with more than one process and a BatchNorm layer
    kwargs: dict[str, Any] = Field(default_factory=dict)


class LossConfig(_Section):
    name: str = "nonsaturating"
    r1_gamma: float = Field(0.0, ge=0.0)
    r1_interval: int = Field(16, ge=1)
    r2_gamma: float = Field(0.0, ge=0.0)
    r2_interval: int = Field(16, ge=1)
    gp_weight: float = Field(10.0, ge=0.0)
    clip_value: float = Field(0.01, gt=0.0)

    @field_validator("name")
    @classmethod
    def _registered(cls, value: str) -> str:
        from distgan.losses.adversarial import ADVERSARIAL_LOSSES  # the registry is the list of names

        if value not in ADVERSARIAL_LOSSES:
            raise ValueError(f"loss.name={value!r}: use one of {', '.join(map(repr, ADVERSARIAL_LOSSES))}")
        return value


class OptimizerConfig(_Section):
    lr: float = Field(2e-4, gt=0.0)
    betas: tuple[float, float] = (0.5, 0.999)
    eps: float = Field(1e-8, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)


class OptimConfig(_Section):
    g: OptimizerConfig = Field(default_factory=OptimizerConfig)
    d: OptimizerConfig = Field(default_factory=OptimizerConfig)


class EMAConfig(_Section):
    enabled: bool = True
    kimg: float = Field(10.0, ge=0.0)  # 0: the EMA is G itself (R3GAN ramps it from 0)
    rampup: float | None = Field(0.05, gt=0.0)


class ScheduleConfig(_Section):
    """Values over images seen: each scheduled value moves from its configured value to its end
    value over the first `kimg` thousand real images, then stays (R3GAN's schedules)."""

    shape: Literal["constant", "linear", "cosine"] = "constant"
    kimg: float = Field(20000.0, gt=0.0)
    lr_warmup_kimg: float = Field(0.0, ge=0.0)
    lr_scale_end: float = Field(1.0, ge=0.0)
    beta2_end: float | None = Field(None, ge=0.0, lt=1.0)
    gamma_scale_end: float = Field(1.0, ge=0.0)
    ema_kimg_end: float | None = Field(None, ge=0.0)


class AugConfig(_Section):
    """Augmentation of every image D sees (distgan.augment)."""

    name: Literal["none", "diffaug", "ada"] = "none"
    p: float = Field(0.0, ge=0.0, le=1.0)  # ada: the fixed p, or where a schedule or the controller starts
    adaptive: bool | Literal["auto"] = "auto"  # auto: on for ada unless p_end schedules p
    target: float = Field(0.6, ge=0.0, le=1.0)
    interval: int = Field(4, ge=1)
    speed_kimg: float = Field(500.0, gt=0.0)
    p_end: float | None = Field(None, ge=0.0, le=1.0)
    diffaug_policy: str = "color,translation,cutout"

    @field_validator("diffaug_policy")
    @classmethod
    def _known_policies(cls, value: str) -> str:
        from distgan.augment.diffaugment import POLICIES

        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = [name for name in names if name not in POLICIES]
        if unknown or not names:
            raise ValueError(f"aug.diffaug_policy={value!r}: use a comma-separated list of {', '.join(POLICIES)}")
        return value

    @property
    def is_adaptive(self) -> bool:
        return self.name == "ada" and (self.adaptive is True or (self.adaptive == "auto" and self.p_end is None))


class TrainConfig(_Section):
    steps: int = Field(5000, ge=1)
    batch_size: int = Field(64, ge=1)
    grad_accum: int = Field(1, ge=1)
    n_critic: int = Field(1, ge=1)
    log_every: int = Field(50, ge=1)
    sample_every: int = Field(500, ge=0)
    checkpoint_every: int = Field(1000, ge=0)
    keep_checkpoints: int = Field(3, ge=1)
    resume: str = "auto"
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] | None = "auto"
    channels_last: bool | Literal["auto"] = "auto"
    compile: bool = False
    compile_backend: str = "inductor"

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value  # YAML reads a bare `no` as false

    progress: bool = True
    consistency_check_every: int = Field(0, ge=0)
    on_nonfinite: Literal["skip", "rollback", "stop"] = "skip"
    nonfinite_patience: int = Field(20, ge=1)


class EvalConfig(_Section):
    every: int = Field(0, ge=0)
    num_images: int = Field(10000, ge=2)
    real_split: str | None = None
    num_real: int | None = Field(None, ge=2)
    inception: str = "fid-inception"
    resize: Literal["bilinear", "clean"] = "bilinear"
    batch_size: int = Field(100, ge=1)
    kid_subsets: int = Field(100, ge=1)
    kid_subset_size: int = Field(1000, ge=2)
    stats_cache: str | None = None


class TrackerConfig(_Section):
    project: str = "distgan"
    run_name: str | None = None


class Config(_Section):
    output_dir: str = "runs/mnist_dcgan"
    seed: int = 0
    tracker: Literal["none", "wandb", "tensorboard"] = "none"
    tracking: TrackerConfig = Field(default_factory=TrackerConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    ema: EMAConfig = Field(default_factory=EMAConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    aug: AugConfig = Field(default_factory=AugConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @model_validator(mode="after")
    def _check_combinations(self) -> Config:
        res = self.data.resolution
        builtin = CATALOG.get(self.model.name)
        if builtin is not None and not builtin.accepts(res):
            raise ValueError(f"data.resolution={res}: model {builtin.name} needs {builtin.allowed_resolutions()}")
        if self.model.name not in model_names() and ":" not in self.model.name:
            raise ValueError(
                f"model.name={self.model.name!r}: use one of {', '.join(model_names())} or 'package.module:Class'"
            )
        if self.train.resume not in ("auto", "never") and not self.train.resume:
            raise ValueError("train.resume is empty: use auto, never or a checkpoint directory")
        if self.data.source in ("imagefolder",) and not self.data.path:
            raise ValueError("data.path is required for data.source=imagefolder: set data.path=DIR_OF_IMAGES")
        if self.data.source == "hf" and not self.data.path:
            raise ValueError(
                "data.path is required for data.source=hf: a hub id (user/name) or a save_to_disk directory"
            )
        if self.data.conditional and not self.data.label_column:
            raise ValueError("data.conditional=true needs labels: set data.label_column to the class column")
        self._check_aug()
        return self

    def _check_aug(self) -> None:
        aug = self.aug
        if aug.name != "ada" and (aug.adaptive is True or aug.p_end is not None or aug.p > 0):
            raise ValueError(
                f"aug.p, aug.adaptive and aug.p_end apply to aug.name=ada, not {aug.name}: set aug.name=ada"
            )
        if aug.p_end is not None and aug.adaptive is True:
            raise ValueError("aug.p_end schedules p, aug.adaptive=true adapts it: set one of them (aug.adaptive=false)")
        if aug.p_end is not None and self.schedule.shape == "constant":
            raise ValueError("aug.p_end needs a schedule: set schedule.shape=cosine (or linear) and schedule.kimg")

    def check_world(self, num_processes: int) -> None:
        """Checks what depends on the launch: the global batch must split evenly."""
        per = num_processes * self.train.grad_accum
        if self.train.batch_size % per:
            raise ConfigError(
                f"train.batch_size={self.train.batch_size} is not divisible by processes x train.grad_accum "
                f"= {num_processes} x {self.train.grad_accum}: use a multiple of {per}"
            )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".yaml") for p in resources.files("distgan.presets").iterdir() if p.name.endswith(".yaml")
    )


def _read_base(preset_or_yaml: str | None) -> dict[str, Any]:
    name = preset_or_yaml or DEFAULT_PRESET
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise ConfigError(
                f"config file {name} does not exist: give a YAML path or a preset ({', '.join(preset_names())})"
            )
        text = path.read_text()
    else:
        if name not in preset_names():
            raise ConfigError(f"unknown preset {name!r}: choose one of {', '.join(preset_names())} or a YAML file path")
        text = resources.files("distgan.presets").joinpath(f"{name}.yaml").read_text()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config {name} is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {name} must be a mapping of keys to values, got {type(data).__name__}")
    return data


def _apply_override(data: dict[str, Any], override: str) -> None:
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {override!r} is not key.sub=value (for example train.steps=1000)")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    node = data
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    kind = first["type"]
    if kind == "extra_forbidden":
        section = _section_of(first["loc"][:-1])
        allowed = ", ".join(section.model_fields) if section else ""
        where = ".".join(str(p) for p in first["loc"][:-1]) or "top level"
        return f"unknown config key {key!r}: keys allowed at {where} are {allowed}"
    if kind == "value_error":
        return first["msg"].removeprefix("Value error, ")
    given = first.get("input")
    return f"{key}={given!r}: {first['msg'].lower()}" if key else first["msg"]


def _section_of(loc: tuple) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return model


def load_config(preset_or_yaml: str | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Builds the run config from a preset name or YAML path plus `key.sub=value` overrides."""
    data = _read_base(preset_or_yaml)
    for override in overrides:
        _apply_override(data, override)
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None
