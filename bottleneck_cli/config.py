"""Typed configuration: the one place defaults live.

The dataclasses below are registered in Hydra's ConfigStore as the schema of
``configs/config.yaml``; YAML group files (``model/``, ``task/``, ``optim/``,
``experiment/``) only override values. ``load(overrides)`` composes, validates
and returns a plain ``OmegaConf`` DictConfig; ``validate`` (``validation.py``) checks
ranges, sizes and dtype limits that types alone cannot express.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .validation import CHOICES, RANGES, ConfigError, validate  # noqa: F401 (re-exported)

def _config_dir() -> Path:
    """The shipped Hydra config folder: the repository's top-level ``configs/``, installed
    as the package ``bottleneck_cli.configs`` (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("bottleneck_cli.configs")
    if spec is not None and spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve()
    return Path(__file__).resolve().parents[1] / "configs"  # a source tree on sys.path


CONFIG_DIR = _config_dir()
USER_CONFIG_ENV = "BNCLI_CONFIG_DIR"


@dataclass
class ModelConfig:
    _target_: Optional[str] = None  # a researcher's own model class (docs/extending.md)
    name: str = "mlp"  # mlp | linear
    bias: bool = True
    activation: str = "relu"  # relu | tanh | identity
    init: str = "he"  # he (var 2/fan_in) | lecun (var 1/fan_in)
    init_scale: float = 1.0  # multiplies the init standard deviation (variance sigma^2/fan_in)
    ridge_on_bias: bool = False  # include biases in the ridge term


@dataclass
class CNNConfig(ModelConfig):
    """Circular convolutions on the torus (models/cnn.py, arXiv 2402.08010)."""

    name: str = "cnn"
    kernel: int = 3  # kernel size (odd: centred; cut to a layer's size when larger)
    head: str = "pool"  # pool (global average pooling + linear) | map (a same-size image)
    downsample: list[int] = field(default_factory=list)  # conv layers with stride 2


# ---- task families: each its own dataclass, a Hydra group option (configs/task/<name>.yaml)
@dataclass
class TaskBase:
    name: str = "compositional"
    loss: str = "mse"  # mse | cross_entropy (classification tasks)
    data_seed: Optional[int] = None  # seed of the data; default: the run seed


@dataclass
class GeneratedTask(TaskBase):
    n_train: int = 256
    n_test: int = 256
    d_in: int = 20
    d_out: int = 20
    noise: float = 0.0  # std of Gaussian label noise on training targets


@dataclass
class CompositionalTask(GeneratedTask):
    """f* = h o g through a rank-k inner map (SCIENCE.md 5.1)."""

    d_latent: int = 8  # dimension of the latent z the input is built from
    rank: int = 2  # inner dimension k of f = h o g
    inner: str = "smooth"  # g is "linear" or a random "smooth" map
    hidden: int = 64  # width of the random networks used as g and h


@dataclass
class TeacherTask(GeneratedTask):
    """y = a random ReLU teacher network of x (SCIENCE.md 5.3)."""

    name: str = "teacher"
    hidden: int = 64  # teacher width
    teacher_depth: int = 3  # weight matrices of the random ReLU teacher


@dataclass
class LowRankTask(GeneratedTask):
    """y = A x with rank(A) = rank; identity inputs: the denoising problem (SCIENCE.md 4)."""

    name: str = "low_rank"
    rank: int = 2
    singular_values: Optional[list[float]] = None  # s_i(A), default rank..1 evenly spaced
    inputs: str = "gaussian"  # gaussian | identity


@dataclass
class NpzTask(TaskBase):
    """The user's own arrays: x_train, y_train[, x_test, y_test] (README)."""

    name: str = "npz"
    path: Optional[str] = None


@dataclass
class DigitsTask(TaskBase):
    """scikit-learn's 8x8 digits (shipped with it): classification with one-hot targets."""

    name: str = "digits"
    n_train: int = 1000
    n_test: int = 500
    n_classes: int = 10  # how many digit classes to keep (2..10)
    digit: Optional[int] = None  # set: the autoencoder of this one class (targets = images)


@dataclass
class TextureTask(TaskBase):
    """Synthetic images: a low-frequency shape times a high-frequency pattern (autoencoder)."""

    name: str = "texture"
    n_train: int = 256
    n_test: int = 64
    size: int = 16  # images are size x size, one channel
    shape_freq: int = 1  # the shape's frequencies: max(|k_y|, |k_x|) <= shape_freq
    pattern_freq: int = 4  # the pattern cos(2π f p_y / n) cos(2π f p_x / n)
    noise: float = 0.0  # std of Gaussian noise on the training targets


TASK_FAMILIES = {"compositional": CompositionalTask, "teacher": TeacherTask,
                 "low_rank": LowRankTask, "npz": NpzTask, "digits": DigitsTask,
                 "texture": TextureTask}
MODEL_FAMILIES = {"mlp": ModelConfig, "linear": ModelConfig, "cnn": CNNConfig}
TaskConfig = CompositionalTask  # the default task's settings


@dataclass
class StageConfig:
    """One training stage; unset fields inherit from ``optim`` (see optim.stages)."""

    steps: Optional[int] = None  # length; null: the rest of the run (last stage only)
    name: Optional[str] = None  # optimizer: gd | sgd | adam | lbfgs (full batch)
    schedule: Optional[str] = None  # lr schedule over this stage: constant | cosine | step
    lr_scale: float = 1.0  # this stage's lr = lr * lr_scale (lbfgs: the line search's scale)
    lam_scale: float = 1.0  # this stage's ridge = lam * lam_scale


@dataclass
class OptimConfig:
    name: str = "adam"  # gd (full batch) | sgd (minibatch) | adam | lbfgs (full batch)
    momentum: float = 0.0
    batch_size: Optional[int] = None  # sgd/adam minibatch; None = full batch
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    schedule: str = "constant"  # constant | cosine | step
    decay_every: int = 1000  # step schedule: multiply lr by decay_factor every this many steps
    decay_factor: float = 0.1
    warmup_steps: int = 0
    lam_schedule: str = "constant"  # constant | anneal: lam*lam_factor after lam_warm_steps
    lam_warm_steps: int = 0
    lam_factor: float = 0.1
    stages: list[StageConfig] = field(default_factory=list)  # empty: one stage of `steps`


@dataclass
class MetricsConfig:
    num_log: int = 20  # log-spaced metric steps (plus step 0 and the final step)
    every: int = 0  # >0: also record every this many steps
    atol: float = 0.1  # numerical rank: #{s_i > max(atol, rtol * s_1)}
    rtol: float = 0.1
    near_one_delta: float = 0.5  # near-one count: #{|s_i - 1| <= delta}
    max_samples: int = 1024  # representations use at most this many training samples
    ntk: bool = False  # NTK trace and top eigenvalue (costs ~30 steps per record; presets enable it)
    ntk_samples: int = 128  # the NTK uses the first this many training inputs
    jacobian_samples: int = 8  # inputs at which the Jacobian is evaluated (0 = off)
    neuron_cos: float = 0.99  # distinct neuron directions: two with this cosine count once
    neuron_active: float = 0.01  # active: output term above this fraction of the layer's largest


@dataclass
class CheckpointConfig:
    every: int = 1000  # steps between checkpoints (also taken at every metric step past it)


@dataclass
class SweepConfig:
    max_members: int = 64  # members per compiled program; larger groups are split
    cpu_threads: int = 0  # CPU only: members trained side by side in threads (0: one per core)
    grid: dict[str, Any] = field(default_factory=dict)  # preset sweep axes: key -> "v1,v2"


@dataclass
class Config:
    name: Optional[str] = None  # run name; default derived from the overrides
    out: str = "runs"  # parent folder of run folders
    depth: int = 12  # L, the number of weight matrices
    width: int = 64
    # Defaults: Adam on the rank-2 compositional task reaches the bottleneck (centered
    # middle-layer rank 2, 2-3 weight singular values near 1) in 5000 steps on a laptop CPU.
    lam: float = 0.02  # ridge strength lambda in fit + lam * sum ||W_l||_F^2
    lr: float = 0.006
    seed: int = 0
    steps: int = 5000
    dtype: str = "float32"  # float32 | float64
    log_every_s: float = 10.0  # plain log line cadence when not in a terminal
    model: Any = "???"  # (missing until composed) a group option: mlp/linear (ModelConfig) or the user's own YAML
    task: Any = "???"  # (missing until composed) a group option: one of TASK_FAMILIES
    optim: OptimConfig = field(default_factory=OptimConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    description: str = ""  # free text, used by experiment presets


# Config keys that do not change what is trained: placement, names, free text, log and
# metric cadence, checkpointing and sweep execution (dotted prefixes: "metrics" covers
# every metrics.* key). Reports never tell runs apart by them.
BOOKKEEPING_KEYS = ("name", "out", "description", "log_every_s", "metrics", "checkpoint",
                    "sweep", "hydra")


# Settings that never change a compiled program: traced per-member arrays (lam, lr, the
# seed's random key) and values used on the host only (initial scale, data values, the
# run's name and place). Members that differ only here train together in one program;
# sweep grouping and the program cache both use ``program_key``.
PROGRAM_FREE = ("seed", "lam", "lr", "model.init_scale", "task.noise", "task.data_seed",
                "task.singular_values", "name", "out", "description")


def program_key(cfg) -> str:
    """The config without ``PROGRAM_FREE`` keys, as sorted JSON: equal keys, one program."""
    import json

    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True) if not isinstance(cfg, dict) else dict(cfg)
    for dotted in PROGRAM_FREE:
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.get(p, {})
        node.pop(leaf, None)
    return json.dumps(data, sort_keys=True, default=str)


def register_schema() -> None:
    """Register the structured schema under the name the primary config extends."""
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(name="bncli_schema", node=Config)
    # Family schemas live under schema/ (not in the groups themselves, so that
    # model=glob(*) lists only real options); configs/<group>/<name>.yaml extends one.
    for group, families in (("model", MODEL_FAMILIES), ("task", TASK_FAMILIES)):
        for name, node in families.items():
            store.store(group=f"schema/{group}", name=name, node=node)


def user_config_dirs(config_dirs) -> list[str]:
    """User config folders: ``--config-dir`` ones, then $BNCLI_CONFIG_DIR's; all must exist."""
    dirs = list(config_dirs)
    env = os.environ.get(USER_CONFIG_ENV)
    if env:
        dirs.extend(d for d in env.split(os.pathsep) if d)
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"config folder {d!r} does not exist")
    return [str(Path(d).resolve()) for d in dirs]


def search_path_overrides(config_dirs: list[str]) -> list[str]:
    """Hydra overrides that add user config folders (``--config-dir`` or $BNCLI_CONFIG_DIR)."""
    dirs = user_config_dirs(config_dirs)
    if not dirs:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{d}" for d in dirs) + "]"]


def _one_line(exc: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines and chain causes; keep the informative line."""
    while exc.__cause__ is not None and str(exc.__cause__).strip():
        exc = exc.__cause__
    lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
    keep = [ln for ln in lines if not ln.startswith(("full_key:", "object_type=", "reference_type="))]
    text = " ".join(keep or lines) or type(exc).__name__
    for tail in (" Config search path:", " See https://"):
        text = text.split(tail)[0]
    text = text.replace("Key '", "unknown key '").replace(" not in 'Config'", "")
    key = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("full_key:")), "")
    if key and key not in text:
        text = f"{key}: {text}"
    return text


def compose(overrides: list[str], config_dirs: list[str] = (), config_name: str = "config"):
    """Compose the Hydra config for ``overrides`` (no validation). Raises ConfigError."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    register_schema()
    extra = search_path_overrides(list(config_dirs))
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides) + extra)
    except Exception as exc:  # Hydra/OmegaConf raise many types; all are user input errors here
        raise ConfigError(_one_line(exc)) from exc
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.set_readonly(cfg, False)
    # Drop Hydra's own node: the run config is ours alone.
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def _type_own_options(cfg) -> None:
    """A user's own group YAML without a schema gets its family's types and defaults (by
    ``name``), so that a typo in it is an error as on the command line. A model with a
    ``_target_`` stays as written: its class takes the keys."""
    from omegaconf import OmegaConf

    for group, families in (("model", MODEL_FAMILIES), ("task", TASK_FAMILIES)):
        node = cfg[group]
        if OmegaConf.get_type(node) is not dict or node.get("_target_"):
            continue
        name = node.get("name")
        if name not in families:
            raise ConfigError(f"{group}.name={name!r} is not valid; choose from "
                              f"{sorted(families)}")
        cfg[group] = OmegaConf.merge(OmegaConf.structured(families[name]), node)


def load(overrides: list[str], config_dirs: list[str] = ()):
    """Compose, resolve and validate the config for ``overrides``; ConfigError on bad input."""
    from omegaconf import OmegaConf

    cfg = compose(overrides, config_dirs)
    try:
        OmegaConf.resolve(cfg)  # a run records values, not ${...} references
        _type_own_options(cfg)
        validate(cfg)
    except ConfigError:
        raise
    except Exception as exc:  # a deleted key (~depth), an unresolvable ${...}
        raise ConfigError(_one_line(exc)) from exc
    if cfg.model.get("_target_"):
        from .models import resolve_target

        try:
            resolve_target(cfg.model._target_, user_config_dirs(config_dirs))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return cfg
