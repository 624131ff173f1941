"""Config: presets, YAML files, overrides, and one-line errors for bad input."""

from pathlib import Path

import pytest
import yaml

from distgan.config import Config, ConfigError, load_config, preset_names


def test_presets_ship_and_validate():
    shipped = {"mnist_mlp", "mnist_dcgan", "cifar10_dcgan", "cifar10_resnet", "mnist_r3gan", "cifar10_r3gan"}
    assert set(preset_names()) >= shipped
    for name in preset_names():
        assert isinstance(load_config(name), Config)


def test_default_is_mnist_dcgan_at_32():
    cfg = load_config()
    assert (cfg.model.name, cfg.data.source, cfg.data.resolution) == ("dcgan", "mnist", 32)
    assert cfg.optim.g.lr == 2e-4 and cfg.optim.d.betas == (0.5, 0.999)


def test_required_keys_exist():
    cfg = load_config(
        "mnist_dcgan",
        [
            "output_dir=/tmp/x",
            "seed=3",
            "train.steps=7",
            "train.batch_size=8",
            "train.grad_accum=2",
            "train.n_critic=2",
            "train.log_every=1",
            "train.sample_every=2",
            "train.checkpoint_every=3",
            "train.keep_checkpoints=1",
            "train.resume=never",
            "data.source=imagefolder",
            "data.path=/d",
            "data.resolution=16",
            "model.name=dcgan",
            "loss.name=hinge",
            "tracker=wandb",
        ],
    )
    assert cfg.train.steps == 7 and cfg.train.n_critic == 2 and cfg.tracker == "wandb"
    assert cfg.data.path == "/d" and cfg.loss.name == "hinge" and cfg.seed == 3


def test_yaml_file_and_overrides_win(tmp_path: Path):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"train": {"steps": 11}, "loss": {"name": "lsgan"}}))
    cfg = load_config(str(path), ["train.steps=12"])
    assert cfg.train.steps == 12 and cfg.loss.name == "lsgan"


def test_resolved_config_round_trips():
    cfg = load_config("cifar10_resnet", ["train.steps=5"])
    again = Config.model_validate(yaml.safe_load(cfg.to_yaml()))
    assert again == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.stepz=1"], "unknown config key 'train.stepz'"),
        (["nope=1"], "unknown config key 'nope'"),
        (["train.steps=abc"], "train.steps='abc'"),
        (["train.steps=0"], "train.steps=0"),
        (["loss.name=bogus"], "'hinge'"),
        (["tracker=mlflow"], "'wandb'"),
        (["data.resolution=48"], "power of two"),
        (["model.name=unet"], "package.module:Class"),
        (["data.source=imagefolder"], "data.path is required"),
        (["optim.g.betas=[0.5]"], "optim.g.betas"),
        (["trainsteps"], "key.sub=value"),
        (["aug.name=flip"], "aug.name='flip'"),
        (["aug.name=ada", "aug.p=1.5"], "aug.p=1.5"),
        (["aug.name=diffaug", "aug.diffaug_policy=color,rotate"], "color, translation, cutout"),
        (["aug.p=0.5"], "apply to aug.name=ada, not none: set aug.name=ada"),
        (["aug.name=ada", "aug.p_end=0.55"], "aug.p_end needs a schedule: set schedule.shape=cosine"),
        (["aug.name=ada", "aug.p_end=0.55", "aug.adaptive=true", "schedule.shape=cosine"], "set one of them"),
    ],
)
def test_bad_input_is_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config("mnist_dcgan", overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_ada_adapts_p_unless_a_schedule_or_the_user_fixes_it():
    adaptive = lambda *o: load_config("mnist_dcgan", ["aug.name=ada", *o]).aug.is_adaptive  # noqa: E731
    assert adaptive() and not adaptive("aug.adaptive=false")
    assert not adaptive("aug.p_end=0.55", "schedule.shape=cosine")
    assert not load_config("mnist_dcgan", ["aug.name=diffaug"]).aug.is_adaptive


def test_unknown_preset_and_missing_file():
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*mnist_dcgan"):
        load_config("nope")
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/no/such/file.yaml")


def test_batch_must_divide_processes_times_accumulation():
    cfg = load_config("mnist_dcgan", ["train.batch_size=12", "train.grad_accum=2"])
    cfg.check_world(3)
    cfg.check_world(2)
    with pytest.raises(ConfigError, match=r"train.batch_size=12 .* 4 x 2: use a multiple of 8"):
        cfg.check_world(4)


@pytest.mark.parametrize("preset", preset_names())
def test_presets_take_channels_from_the_data(preset: str, tmp_path: Path):
    from PIL import Image

    from distgan.data import build_dataset

    folder = tmp_path / "rgb"
    folder.mkdir()
    for i in range(2):
        Image.new("RGB", (20, 20), (200, 30 * i, 10)).save(folder / f"{i}.png")
    rgb = load_config(preset, ["data.source=imagefolder", f"data.path={folder}", "data.resolution=16"])
    assert build_dataset(rgb.data)[0]["image"].shape[0] == 3  # not turned grayscale by the preset
    mnist = load_config(preset, ["data.source=mnist", "data.path=null", "data.resolution=16"])
    assert build_dataset(mnist.data)[0]["image"].shape[0] == 1
