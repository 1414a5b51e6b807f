"""The report package's shape: one module per figure kind behind the FIGURES registry,
and matplotlib loaded only when a figure is drawn."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

from bottleneck_cli.report import figures
from bottleneck_cli.report.figures import FIGURES


def _home(fn) -> str:
    """The module that defines ``fn`` (through ``partial`` and the style decorator)."""
    return getattr(fn, "func", fn).__module__


def test_every_figure_module_plans_and_draws_and_is_registered():
    kinds = [m.name for m in pkgutil.iter_modules(figures.__path__) if m.name != "base"]
    for kind in FIGURES.values():  # each entry plans and draws in one figure module
        assert callable(kind.plan) and callable(kind.draw)
        assert _home(kind.plan) == _home(kind.draw), (_home(kind.plan), _home(kind.draw))
    registered = {_home(kind.draw) for kind in FIGURES.values()}
    for name in kinds:
        module = importlib.import_module(f"{figures.__name__}.{name}")
        assert module.__name__ in registered, f"{name} has no entry in FIGURES"
    assert sum(kind.per_run for kind in FIGURES.values()) == 1


def test_planning_a_report_does_not_load_matplotlib():
    code = ("import sys\n"
            "import bottleneck_cli.cli, bottleneck_cli.report, bottleneck_cli.report.plan\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib loaded on import'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
