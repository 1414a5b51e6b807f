"""Text for numbers and settings, shared by the report's tables, figures and pages."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def fmt(v: Any, digits: int = 4) -> str:
    """A cell: floats to ``digits`` significant digits; missing values (None, NA, NaN) empty."""
    if v is None or v is pd.NA:
        return ""
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        return f"{v:.{digits}g}" if math.isfinite(v) else str(float(v))
    return str(v)


def pm(value: float, err: float) -> str:
    """``value ± err`` (the error left out when it is not finite)."""
    return f"{value:.3g}" + (f" ± {err:.2g}" if math.isfinite(err) else "")


def label(values: dict) -> str:
    """A setting as ``k=v, k=v``."""
    return ", ".join(f"{k}={fmt(v)}" for k, v in values.items())
