"""Reading the metrics settings: a MetricsConfig, a DictConfig, a dict, or None (defaults)."""

from __future__ import annotations

from typing import Mapping


def setting(metrics_cfg, name: str):
    """A field of MetricsConfig (dataclass, DictConfig or dict); defaults when cfg is None."""
    if metrics_cfg is None:
        from ..config import MetricsConfig

        return getattr(MetricsConfig(), name)
    if isinstance(metrics_cfg, Mapping):
        return metrics_cfg[name]
    return getattr(metrics_cfg, name)
