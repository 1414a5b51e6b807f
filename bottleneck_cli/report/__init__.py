"""``bncli report``: aggregate run folders into tables, figures and one HTML page.

The public API; ``build`` holds the pipeline (see its docstring for the data flow).
Reads run folders only (``rundir`` is the contract); never imports JAX or training code.
"""

from .build import ReportResult, build_report
from .load import ReportError, Run, load_runs, read_config
from .tables import config_frame, swept_keys
from .terminal import print_summary

__all__ = ["ReportError", "ReportResult", "Run", "build_report", "config_frame",
           "load_runs", "print_summary", "read_config", "swept_keys"]
