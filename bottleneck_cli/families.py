"""The typed settings of each model and task family: one dataclass per family, each a
Hydra group option (``configs/model/<name>.yaml`` and ``configs/task/<name>.yaml`` extend
``/schema/<group>/<name>``; ``config.register_schema`` stores them). With ``config.py``
the one place defaults are defined; a new family adds its dataclass and registry line here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass
class ModelConfig:
    _target_: Optional[str] = None  # a researcher's own model class (docs/extending.md)
    name: str = "mlp"  # mlp | linear
    bias: bool = True  # every layer has a bias
    activation: str = "relu"  # relu | tanh | identity
    init: str = "he"  # he (var 2/fan_in) | lecun (var 1/fan_in)
    init_scale: float = 1.0  # multiplies the init standard deviation (variance sigma^2/fan_in)
    init_gamma: Optional[float] = None  # set: W entries N(0, width^-gamma) (arXiv 2106.15933)
    ridge_on_bias: bool = False  # include biases in the ridge term


@dataclass
class CNNConfig(ModelConfig):
    """Circular convolutions on the torus (models/cnn.py, arXiv 2402.08010)."""

    name: str = "cnn"
    kernel: int = 3  # kernel size (odd: centred; cut to a layer's size when larger)
    head: str = "pool"  # pool (global average pooling + linear) | map (a same-size image)
    downsample: list[int] = field(default_factory=list)  # conv layers with stride 2


@dataclass
class LeakyResNetConfig:
    """Leaky ResNet (arXiv 2405.17573): L = depth residual layers of width ``width``."""

    name: str = "leaky_resnet"  # the model family (set by model=NAME)
    leak: float = 1.0  # the effective depth Lt (> 0)
    steps: str = "equidistant"  # layer steps rho_l: equidistant | irregular | adaptive
    irregular_a: float = 0.5  # irregular: rho_l ~ 1 + a (1/4 - |l/L - 1/2|), a in [0, 1)
    adapt_every: int = 100  # adaptive: training steps between updates of rho
    learn_ends: bool = True  # the input and output linear maps are trained (else fixed)
    ridge_ends: bool = True  # count the (learned) end maps in the ridge
    init_scale: float = 1.0  # multiplies the init standard deviation


# ---- task families: each its own dataclass, a Hydra group option (configs/task/<name>.yaml)
@dataclass
class TaskBase:
    name: str = "compositional"  # the task family (set by task=NAME)
    loss: str = "mse"  # mse | cross_entropy (classification tasks)
    data_seed: Optional[int] = None  # seed of the data; default: the run seed


@dataclass
class GeneratedTask(TaskBase):
    n_train: int = 256  # training samples
    n_test: int = 256  # test samples
    d_in: int = 20  # input dimension
    d_out: int = 20  # output dimension
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
class BottleneckTeacherTask(GeneratedTask):
    """f* = composition of random networks through low inner dimensions (arXiv 2405.17573)."""

    name: str = "bottleneck_teacher"
    n_train: int = 1000
    n_test: int = 1000
    d_in: int = 30
    d_out: int = 30
    inner_dims: list[int] = field(default_factory=lambda: [3])  # inner dimensions; k* = min
    teacher_kind: str = "fc"  # fc (random ReLU MLPs) | resnet (random ResNets)
    hidden: int = 100  # width of each random network
    teacher_depth: int = 3  # layers (fc) or residual blocks (resnet) of each network


@dataclass
class LowRankTask(GeneratedTask):
    """y = A x with rank(A) = rank; identity inputs: the denoising problem (SCIENCE.md 4)."""

    name: str = "low_rank"
    rank: int = 2  # rank of A
    singular_values: Optional[list[float]] = None  # s_i(A), default rank..1 evenly spaced
    inputs: str = "gaussian"  # gaussian | identity


@dataclass
class CompletionTask(TaskBase):
    """A rank-r M* (d_out x d_in) observed on a fraction of its entries (SCIENCE.md 5.6)."""

    name: str = "completion"
    d_in: int = 20  # columns of M*
    d_out: int = 20  # rows of M*
    rank: int = 2  # rank r of M*
    singular_values: Optional[list[float]] = None  # s_i(M*), default all 1
    observed: float = 0.5  # fraction of entries observed, in (0, 1]
    sampling: str = "cover"  # cover (>= 1 per row and column, then uniform) | uniform
    noise: float = 0.0  # std of Gaussian noise on the observed entries


@dataclass
class NpzTask(TaskBase):
    """The user's own arrays: x_train, y_train[, x_test, y_test] (README)."""

    name: str = "npz"
    path: Optional[str] = None  # the .npz file (required)


@dataclass
class DigitsTask(TaskBase):
    """scikit-learn's 8x8 digits (shipped with it): classification with one-hot targets."""

    name: str = "digits"
    n_train: int = 1000  # training images
    n_test: int = 500  # test images
    n_classes: int = 10  # how many digit classes to keep (2..10)
    digit: Optional[int] = None  # set: the autoencoder of this one class (targets = images)


@dataclass
class MixedTargetTask(TaskBase):
    """A* = U V^T (U, V: d x rank, entries rank^(-1/4) N(0,1)) observed with noise E
    (N(0, noise^2) entries): arXiv 2405.17580, main.ipynb (SCIENCE.md 5.7)."""

    name: str = "mixed_target"
    d: int = 200  # A* is d x d
    rank: int = 5  # K
    noise: float = 1.0  # std of the entries of E (official: 1)


@dataclass
class MixedModelConfig:
    """A = W2 W1, entries N(0, d^gamma_sigma), width int(d^gamma_w), trained by the
    official GD recursion (models/mixed_train.py), not by ``optim``."""

    name: str = "mixed"  # the model family (set by model=NAME)
    gamma_sigma: float = -1.85  # sigma^2 = d^gamma_sigma
    gamma_w: float = 2.25  # w = int(d^gamma_w)
    exact_width: Optional[bool] = None  # simulate the 2d-dim span; null: when w > 2d
    eta_factor: float = 50.0  # step 1/(f w sigma^2) if gamma_w + gamma_sigma > 1, else 1/(f ||A*||)
    stop_train: float = 1e-3  # stop when the train error is below this
    stop_increasing: int = 3  # stop when this many consecutive test errors increase
    plateau_delta: float = 2e-4  # stop when |loss_i - loss_{i-1}| < this ...
    plateau_drop: float = 1e-2  # ... and loss_0 - loss_i > this
    self_consistent: bool = True  # run the self-consistent dynamics beside GD (dist/sc)
    sv_every: int = 10  # singular values of A (and B) every this many iterations


@dataclass
class MaternTask(TaskBase):
    """y = h(g(x)), g: R^d_in -> R^d_mid and h: R^d_mid -> R^d_out Matérn GP draws
    (arXiv 2407.05664, SCIENCE.md 5.8); n_train is a prefix of one pool of n_pool points."""

    name: str = "matern"
    n_train: int = 1000  # training points: the pool's first n_train
    n_pool: int = 5000  # the training pool every N-sweep member takes a prefix of
    n_test: int = 1000  # the fixed test set (drawn after the pool)
    d_in: int = 15  # input dimension of g
    d_mid: int = 3  # output dimension of g, input of h
    d_out: int = 20  # output dimension of h
    nu_g: float = 2.0  # Matérn smoothness of g
    nu_h: float = 2.0  # Matérn smoothness of h
    jitter: float = 1e-4  # Tikhonov term added to the kernel's diagonal (official: 1e-4)
    sampler: str = "exact"  # exact (dense Cholesky) | features (random Fourier features)
    features: int = 4096  # random features per GP (sampler=features)
    exact_max: int = 20000  # sampler=exact refuses pools (n_pool + n_test) larger than this
    cache: str = ""  # folder of the drawn pools ("" = none); the task YAML: ${out}/.bncli-cache


@dataclass
class ShallowConfig(ModelConfig):
    """One hidden ReLU layer of ``hidden`` units (depth 2; top-level depth/width unused)."""

    name: str = "shallow"
    hidden: int = 5000  # the paper's shallow net: 50,000 (a GPU)


@dataclass
class AccNetConfig(ModelConfig):
    """Accordion net (arXiv 2407.05664): ``blocks`` blocks d_mid -> d_full -> d_mid, ReLU
    after every layer but the last (depth 2 * blocks; top-level depth/width unused)."""

    name: str = "accnet"
    blocks: int = 5  # blocks d_mid -> d_full -> d_mid
    d_full: int = 900  # the blocks' wide dimension
    d_mid: int = 100  # the blocks' narrow dimension


@dataclass
class TextureTask(TaskBase):
    """Synthetic images: a low-frequency shape times a high-frequency pattern (autoencoder)."""

    name: str = "texture"
    n_train: int = 256  # training images
    n_test: int = 64  # test images
    size: int = 16  # images are size x size, one channel
    shape_freq: int = 1  # the shape's frequencies: max(|k_y|, |k_x|) <= shape_freq
    pattern_freq: int = 4  # the pattern cos(2π f p_y / n) cos(2π f p_x / n)
    noise: float = 0.0  # std of Gaussian noise on the training targets


TASK_FAMILIES = {"compositional": CompositionalTask, "teacher": TeacherTask,
                 "low_rank": LowRankTask, "npz": NpzTask, "digits": DigitsTask,
                 "completion": CompletionTask, "bottleneck_teacher": BottleneckTeacherTask,
                 "mixed_target": MixedTargetTask, "matern": MaternTask,
                 "texture": TextureTask}
MODEL_FAMILIES = {"mlp": ModelConfig, "linear": ModelConfig, "leaky_resnet": LeakyResNetConfig,
                  "mixed": MixedModelConfig, "shallow": ShallowConfig, "accnet": AccNetConfig,
                  "cnn": CNNConfig}
TaskConfig = CompositionalTask  # the default task's settings
