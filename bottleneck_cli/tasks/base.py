"""What every task shares: the Dataset a task returns, its errors, seeded random streams.

Rows are samples: ``x`` is (N, ...) of any per-sample shape (vectors, H x W x C images), ``y``
is (N, d_out). Classification targets are one-hot rows (``classification=True``). A task
may observe only some target entries (``mask``, 1 = observed): the fit then averages over
observed entries only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

SALTS = {"compositional": 0xC0115, "low_rank": 0x10A4, "digits": 0xD161, "teacher": 0x7EAC,
         "completion": 0xC0A1, "bottleneck_teacher": 0xB07E, "mixed_target": 0x2405A,
         "matern": 0x3A7E, "texture": 0x7E47}


class TaskError(ValueError):
    """A user-facing data problem (printed as one line)."""


@dataclass(frozen=True)
class Dataset:
    x_train: np.ndarray  # (N, d_in)
    y_train: np.ndarray  # (N, d_out); one-hot rows when classification
    x_test: np.ndarray  # (M, d_in), M may be 0
    y_test: np.ndarray  # (M, d_out)
    loss: str  # "mse" | "cross_entropy"
    classification: bool  # y rows are one-hot class targets: accuracy is meaningful
    info: dict = field(default_factory=dict)  # small JSON-able facts (true_rank, ...)
    mask: np.ndarray | None = None  # (N, d_out) 1 = observed target entry; None: all
    mask_test: np.ndarray | None = None  # (M, d_out) the test entries scored; None: all

    def with_mask(self, mask, mask_test) -> "Dataset":
        """This dataset with observation masks (cast to the data's dtype)."""
        cast = lambda a: np.ascontiguousarray(a, dtype=self.y_train.dtype)  # noqa: E731
        return replace(self, mask=cast(mask), mask_test=cast(mask_test))

    def observed_entries(self) -> np.ndarray:
        """(n_obs, 2) int32 (row, column) pairs of the observed training entries, row-major."""
        return np.argwhere(self.mask > 0).astype(np.int32)

    @property
    def d_in(self) -> int:
        """Entries per input sample (H W C for images)."""
        return int(np.prod(self.x_train.shape[1:]))

    @property
    def d_out(self) -> int:
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])


def task_seed(task_cfg, seed: int) -> int:
    return int(seed if task_cfg.data_seed is None else task_cfg.data_seed)


def streams(name: str, seed: int, n: int) -> list[np.random.Generator]:
    """n independent generators for task ``name``: adding a draw to one never shifts another."""
    children = np.random.SeedSequence([SALTS[name], seed]).spawn(n)
    return [np.random.default_rng(c) for c in children]


def loss_of(task_cfg, classification: bool) -> str:
    if task_cfg.loss == "cross_entropy" and not classification:
        raise TaskError(
            f"task.loss=cross_entropy needs class targets; task={task_cfg.name} is a "
            "regression task (use task.loss=mse)"
        )
    return str(task_cfg.loss)


def finish(xtr, ytr, xte, yte, loss, classification, info, dtype) -> Dataset:
    cast = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    with np.errstate(over="ignore"):  # values beyond the dtype become inf: callers check
        return Dataset(cast(xtr), cast(ytr), cast(xte), cast(yte), loss, classification, info)


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    """(N, k) rows e_label; memory N * k (no k x k identity)."""
    out = np.zeros((len(labels), k))
    out[np.arange(len(labels)), labels] = 1.0
    return out


