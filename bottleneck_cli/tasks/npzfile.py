"""Reading the user's ``.npz`` for ``task=npz``: every failure is one ``TaskError`` naming
the file, never another exception (a damaged zip, a member that is not a ``.npy`` array,
a corrupt compressed stream, an array too large to hold, values the run dtype cannot
represent, class labels that are not 0..n_classes-1)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .base import TaskError
from ..validation import MAX_DIM, MAX_ELEMENTS

KEYS = ("x_train", "y_train", "x_test", "y_test")
MAX_CLASSES = MAX_DIM  # one-hot targets are the net's outputs: the bound of task.d_out


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _member(f: np.lib.npyio.NpzFile, key: str, where: str) -> str:
    """The zip member holding array ``key``; it must be a ``.npy`` file."""
    if key + ".npy" in f.zip.namelist():
        return key + ".npy"
    raise TaskError(f"{key} in {where} is not a .npy array")


def _header_shape(f: np.lib.npyio.NpzFile, member: str):
    """The array's shape read from its .npy header (nothing else decompressed), or None."""
    readers = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}
    with f.zip.open(member) as fh:
        reader = readers.get(np.lib.format.read_magic(fh))
        return reader(fh)[0] if reader else None


def _read(f: np.lib.npyio.NpzFile, key: str, where: str) -> np.ndarray:
    """Array ``key``, refused before decompression when it holds over MAX_ELEMENTS entries."""
    member = _member(f, key, where)
    try:
        shape = _header_shape(f, member)
        if shape is not None and int(np.prod(shape, dtype=object)) > MAX_ELEMENTS:
            raise TaskError(f"{key} in {where} has shape {shape}: more than {MAX_ELEMENTS:.3g} "
                            "entries")
        array = f[key]
    except TaskError:
        raise
    except Exception as exc:  # zlib, zip, header parsing, memory: all mean a bad file here
        raise TaskError(f"cannot read {key} from {where} "
                        f"({type(exc).__name__}: {_first_line(exc)})") from exc
    if not isinstance(array, np.ndarray):
        raise TaskError(f"{key} in {where} is not a .npy array")
    return array


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """x_train, y_train[, x_test, y_test] from the .npz at ``path``, checked one by one."""
    where = repr(str(path))
    try:
        f = np.load(path, allow_pickle=False)
    except Exception as exc:  # OSError, ValueError, BadZipFile, ...: all mean a bad file
        raise TaskError(f"{where} is not a valid .npz file ({_first_line(exc)})") from exc
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise TaskError(f"{where} is not a valid .npz file (it holds a single .npy array)")
    try:
        with f:
            keys = set(f.files)
            for key in ("x_train", "y_train"):
                if key not in keys:
                    raise TaskError(f"{where} has no array {key!r} (found {sorted(keys)})")
            if ("x_test" in keys) != ("y_test" in keys):
                raise TaskError(f"{where} must hold both x_test and y_test, or neither")
            arrays = {k: _read(f, k, where) for k in KEYS if k in keys}
    except (zipfile.BadZipFile, OSError) as exc:  # a damaged zip directory
        raise TaskError(f"{where} is not a valid .npz file ({_first_line(exc)})") from exc
    for k, a in arrays.items():
        check_array(k, a)
    return arrays


def check_array(name: str, a: np.ndarray) -> None:
    """A non-empty array of real numbers, finite when floating."""
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise TaskError(f"{name} has dtype {a.dtype}; it must be a real number type (int or float)")
    if a.size == 0:
        raise TaskError(f"{name} is empty (shape {a.shape})")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a)):
        raise TaskError(f"{name} contains NaN or inf values")


def check_targets(name: str, y: np.ndarray, n: int) -> np.ndarray:
    """2-D targets, or 1-D integer labels in 0..MAX_CLASSES-1, with one row per sample."""
    if y.ndim not in (1, 2):
        raise TaskError(
            f"{name} must be 2-D (N, d_out) or 1-D integer labels (N,), got shape {y.shape}"
        )
    if y.ndim == 1 and not np.issubdtype(y.dtype, np.integer):
        raise TaskError(
            f"1-D {name} must hold integer class labels; reshape regression targets to (N, 1)"
        )
    if y.ndim == 1 and y.min() < 0:
        raise TaskError(f"{name} has negative class labels; labels must be 0..n_classes-1")
    if y.ndim == 1 and y.max() >= MAX_CLASSES:
        raise TaskError(f"{name} has class label {int(y.max())}; labels must be 0..n_classes-1 "
                        f"with at most {MAX_CLASSES} classes")
    if y.ndim == 1 and y.size * (int(y.max()) + 1) > MAX_ELEMENTS:
        raise TaskError(f"{name}: {y.size} labels of {int(y.max()) + 1} classes make a one-hot "
                        f"target of more than {MAX_ELEMENTS:.3g} entries")
    if y.shape[0] != n:
        raise TaskError(f"{name} has {y.shape[0]} rows but x has {n}")
    return y


def check_dtype_range(arrays: dict[str, np.ndarray], dtype, where: str) -> None:
    """Values finite after the cast to the run dtype (1e39 is finite in float64 only)."""
    for name, a in arrays.items():
        if not np.all(np.isfinite(a)):
            info = np.finfo(dtype)
            raise TaskError(f"{name} in {where} has values beyond {np.dtype(dtype).name}'s range "
                            f"(largest {float(info.max):.3g}); rescale the data")
