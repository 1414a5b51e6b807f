"""bncli: train, sweep and report L2-regularized deep networks and their bottleneck spectra.

The Python API (``api``: ``load_runs``, ``load_records``) loads on first use, so that
``import bottleneck_cli`` and the command line stay fast.
"""

__all__ = ["load_records", "load_runs"]


def __getattr__(name: str):
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
