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

from .config_groups import USER_CONFIG_ENV  # noqa: E402,F401
from .config_groups import shipped_config_dir as _config_dir  # noqa: E402

CONFIG_DIR = _config_dir()


from .families import (  # noqa: E402,F401  the families' settings, re-exported
    MODEL_FAMILIES, TASK_FAMILIES, AccNetConfig, BottleneckTeacherTask, CNNConfig, CompletionTask,
    CompositionalTask, DigitsTask, GeneratedTask, LeakyResNetConfig, LowRankTask, MaternTask,
    MixedModelConfig, MixedTargetTask, ModelConfig, NpzTask, ShallowConfig, TaskBase, TaskConfig,
    TeacherTask, TextureTask)


@dataclass
class StageConfig:
    """One training stage; unset fields inherit from ``optim`` (see optim.stages)."""

    steps: Optional[int] = None  # length; null: the rest of the run (last stage only)
    name: Optional[str] = None  # optimizer: gd | sgd | adam | lbfgs (full batch)
    schedule: Optional[str] = None  # lr schedule over this stage: constant | cosine | step | cyclic
    lr_scale: float = 1.0  # this stage's lr = lr * lr_scale (lbfgs: the line search's scale)
    lam_scale: float = 1.0  # this stage's ridge = lam * lam_scale
    # ridge continuation: the ridge starts at lam * lam_start_scale and moves geometrically
    # to lam * lam_scale, reached exactly at the stage's last step (null: constant)
    lam_start_scale: Optional[float] = None  # ridge continuation's start scale (above)
    rebalance: bool = False  # equalise a homogeneous net's ||W_l||² as the stage begins


@dataclass
class OptimConfig:
    name: str = "adam"  # gd (full batch) | sgd (minibatch) | adam | lbfgs (full batch)
    momentum: float = 0.0  # gd/sgd heavy-ball momentum, in [0, 1)
    batch_size: Optional[int] = None  # sgd/adam minibatch; None = full batch
    b1: float = 0.9  # adam: decay of the first-moment average
    b2: float = 0.999  # adam: decay of the second-moment average
    eps: float = 1e-8  # adam: added to the denominator
    schedule: str = "constant"  # constant | cosine | step | cyclic
    cycle_steps: int = 1000  # cyclic: period of lr * (1 + cycle_amp * cos(2 pi t / period))
    cycle_amp: float = 0.5  # cyclic: relative amplitude, in [0, 1)
    replacement: bool = False  # sgd over observed entries: draw with replacement
    decay_every: int = 1000  # step schedule: multiply lr by decay_factor every this many steps
    decay_factor: float = 0.1  # step schedule: the lr factor
    warmup_steps: int = 0  # lr rises linearly from 0 over this many steps
    lam_schedule: str = "constant"  # constant | anneal: lam*lam_factor after lam_warm_steps
    lam_warm_steps: int = 0  # anneal: steps at the full ridge
    lam_factor: float = 0.1  # anneal: the ridge factor after lam_warm_steps
    stages: list[StageConfig] = field(default_factory=list)  # empty: one stage of `steps`


@dataclass
class MetricsConfig:
    num_log: int = 20  # log-spaced metric steps (plus step 0 and the final step)
    every: int = 0  # >0: also record every this many steps
    atol: float = 0.1  # numerical rank: #{s_i > max(atol, rtol * s_1)}
    rtol: float = 0.1  # numerical rank: relative tolerance (see atol)
    jump_persistence: int = 3  # a rank change of A counts once it holds for this many records
    plateau_tol: float = 0.05  # loss plateau: |d log loss / d step| below this x its maximum
    near_one_delta: float = 0.5  # near-one count: #{|s_i - 1| <= delta}
    max_samples: int = 1024  # representations use at most this many training samples
    ntk: bool = False  # NTK trace and top eigenvalue (costs ~30 steps per record; presets enable it)
    ntk_samples: int = 128  # the NTK uses the first this many training inputs
    jacobian_samples: int = 8  # inputs at which the Jacobian is evaluated (0 = off)
    neuron_cos: float = 0.99  # distinct neuron directions: two with this cosine count once
    neuron_active: float = 0.01  # active: output term above this fraction of the layer's largest
    coi_gamma: float = 1e-3  # leaky ResNets: gamma_l = coi_gamma * ||K_l||_op in (K_l + gamma_l I)
    # (off is null rather than false, so that run folders of earlier versions still match)
    tensorboard: Optional[bool] = None  # true: TensorBoard event files in <run>/tb/, live


@dataclass
class TrainConfig:
    until: str = "steps"  # steps | converged (stop a member once converged; steps is the cap)


@dataclass
class ConvergenceConfig:
    """Tolerances of the ``converged`` verdict (convergence.py, docs/metrics.md)."""

    grad_tol: float = 1e-3  # ||grad of the objective|| / ||theta||
    change_tol: float = 1e-3  # relative change of the objective and of ||theta||^2 ...
    window: int = 500  # ... over this many trailing steps
    balance_tol: float = 0.05  # max/min layer norm - 1 (homogeneous nets, bias not in ridge)
    patience: int = 2  # consecutive records below every tolerance


@dataclass
class CheckpointConfig:
    every: int = 1000  # steps between checkpoints (also taken at every metric step past it)


@dataclass
class SweepConfig:
    max_members: int = 64  # members per compiled program; larger groups are split
    cpu_threads: int = 0  # CPU only: members trained side by side in threads (0: one per core)
    devices: str = "all"  # accelerators a sweep trains on, one job per device: all | N
    compile_ahead: bool = True  # compile the next shape's programs while one shape trains
    grid: dict[str, Any] = field(default_factory=dict)  # preset sweep axes: key -> "v1,v2"


@dataclass
class Config:
    name: Optional[str] = None  # run name; default derived from the overrides
    out: str = "runs"  # parent folder of run folders
    depth: int = 12  # L, the number of weight matrices
    width: int = 64  # hidden width (units of each hidden layer)
    # Defaults: Adam on the rank-2 compositional task reaches the bottleneck (centered
    # middle-layer rank 2, 2-3 weight singular values near 1) in 5000 steps on a laptop CPU.
    lam: float = 0.02  # ridge strength lambda in fit + lam * sum ||W_l||_F^2
    lr: float = 0.006  # learning rate
    seed: int = 0  # initialisation seed (and the data's, unless task.data_seed)
    steps: int = 5000  # optimizer steps
    dtype: str = "float32"  # float32 | float64
    log_every_s: float = 10.0  # plain log line cadence when not in a terminal
    model: Any = "???"  # (missing until composed) a group option: mlp/linear (ModelConfig) or the user's own YAML
    task: Any = "???"  # (missing until composed) a group option: one of TASK_FAMILIES
    optim: OptimConfig = field(default_factory=OptimConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    convergence: ConvergenceConfig = field(default_factory=ConvergenceConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    description: str = ""  # free text, used by experiment presets


# Config keys that do not change what is trained: placement, names, free text, log and
# metric cadence, checkpointing and sweep execution (dotted prefixes: "metrics" covers
# every metrics.* key). Reports never tell runs apart by them.
BOOKKEEPING_KEYS = ("name", "out", "description", "log_every_s", "metrics", "checkpoint",
                    "sweep", "hydra", "task.cache")


# Settings that never change a compiled program: traced per-member arrays (lam, lr, the
# seed's random key) and values used on the host only (initial scale, data values, the
# run's name and place). Members that differ only here train together in one program;
# sweep grouping and the program cache both use ``program_key``.
PROGRAM_FREE = ("seed", "lam", "lr", "model.init_scale", "model.init_gamma", "task.noise",
                "task.data_seed", "task.singular_values", "name", "out", "description", "train",
                "convergence",
                "model.gamma_sigma", "model.gamma_w",  # mixed: w enters only the init draw
                "task.nu_g", "task.nu_h", "task.jitter", "task.sampler", "task.features",
                "task.cache")  # matern: the data are drawn on the host


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
        from .hints import explain

        raise ConfigError(explain(exc, _one_line(exc))) from exc
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

    from .hints import check_hydra_overrides

    check_hydra_overrides(list(overrides))
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
