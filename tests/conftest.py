"""Test settings: strict JAX shapes, one BLAS thread, and a temporary runs folder."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
# Tests compare with float64 references: full float32 matmuls on GPUs too (JAX's default
# there is TF32, about 1e-4 relative error), so the suite passes on a GPU as on the CPU.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run a test from an empty folder so ``runs/`` lands in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
