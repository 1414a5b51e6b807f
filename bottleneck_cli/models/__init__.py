"""Models: the ``MODELS`` registry, and a researcher's own model through ``_target_``.

Every family follows the protocol of ``base.Model`` (``depth``, ``init``, ``apply`` ->
``(y, hiddens)``, ``weights``, ``ridge``). Adding a family: a new file here with a
``build_<name>(cfg, in_shape, d_out)`` function, one line in ``MODELS``, and its config
dataclass in ``config.MODEL_FAMILIES`` (see docs/extending.md).

``model._target_=package.module.Class`` instantiates the user's own class instead: it
receives every other key of ``model`` as a keyword argument, plus ``depth``, ``width``,
``in_shape`` (one sample's input shape) and ``d_out``; its module is imported from
``PYTHONPATH``, the working folder or a ``--config-dir`` folder.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable

from .base import Model
from .accnet import build_accnet
from .cnn import CNN, build_cnn
from .leaky_resnet import LeakyResNet, build_leaky_resnet
from .mixed import build_mixed
from .mlp import MLP, FullyConnected, build_linear, build_mlp, build_shallow

MODELS: dict[str, Callable] = {"mlp": build_mlp, "linear": build_linear,
                               "shallow": build_shallow, "accnet": build_accnet,
                               "leaky_resnet": build_leaky_resnet, "mixed": build_mixed,
                               "cnn": build_cnn}

# Families with their own training rule (docs/extending.md): name -> "module:function",
# the function taking ``(members, progress)`` as ``train.train_members`` does.
TRAINERS: dict[str, str] = {"mixed": "bottleneck_cli.models.mixed_train:train_mixed"}


def own_trainer(cfg):
    """The training function of ``cfg.model``'s family when it brings its own, else None."""
    if cfg.model.get("_target_") or cfg.model.get("name") not in TRAINERS:
        return None
    module, _, fn = TRAINERS[cfg.model.name].partition(":")
    return getattr(importlib.import_module(module), fn)


def resolve_target(path: str, search_dirs=()):
    """The class named by ``model._target_`` (``package.module.Class``), imported from
    ``sys.path``, the working folder or ``search_dirs``; ValueError when it cannot be."""
    module_name, _, attr = str(path).rpartition(".")
    for d in [*search_dirs, "."]:
        if d not in sys.path:
            sys.path.append(d)
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ValueError(f"model._target_={path!r} cannot be imported ({exc})") from None


def _target(cfg, in_shape, d_out, search_dirs=()) -> Model:
    from omegaconf import OmegaConf

    cls = resolve_target(cfg.model._target_, search_dirs)
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.model, resolve=True).items()
              if k != "_target_"}
    return cls(depth=cfg.depth, width=cfg.width, in_shape=tuple(in_shape), d_out=d_out, **kwargs)


def build(cfg, in_shape, d_out: int, search_dirs=()) -> Model:
    """Build ``cfg.model`` for inputs of one sample's shape ``in_shape`` (an int is a
    vector length) and outputs of size ``d_out``."""
    in_shape = (in_shape,) if isinstance(in_shape, int) else tuple(in_shape)
    if cfg.model.get("_target_"):
        return _target(cfg, in_shape, d_out, search_dirs)
    try:
        builder = MODELS[cfg.model.name]
    except KeyError:
        raise ValueError(f"Unknown model {cfg.model.name!r}; choose from {sorted(MODELS)}") from None
    return builder(cfg, in_shape, d_out)


__all__ = ["MODELS", "CNN", "LeakyResNet", "MLP", "FullyConnected", "Model", "TRAINERS",
           "build", "own_trainer", "resolve_target"]
