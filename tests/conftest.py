"""Test settings: strict JAX shapes, one BLAS thread, a compilation cache per test
process, and a temporary runs folder."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import jax  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    """One persistent compilation cache per pytest-xdist worker (and its subprocesses):
    JAX writes cache entries in place, so two processes sharing one could read a
    half-written entry (JAX would warn and compile again)."""
    worker = getattr(config, "workerinput", {}).get("workerid")
    if worker is None and getattr(config.option, "numprocesses", None):
        return  # the xdist controller, which runs no test: each worker sets its own
    os.environ.setdefault("BNCLI_JAX_CACHE", os.path.join(
        os.path.expanduser("~"), ".cache", "bncli", f"jax-tests-{worker or 'main'}"))


jax.config.update("jax_numpy_rank_promotion", "raise")
# Tests compare with float64 references: full float32 matmuls on GPUs too (JAX's default
# there is TF32, about 1e-4 relative error), so the suite passes on a GPU as on the CPU.
jax.config.update("jax_default_matmul_precision", "highest")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run a test from an empty folder so ``runs/`` lands in tmp."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
