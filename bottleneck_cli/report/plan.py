"""Which figures a report gets, and drawing them.

``per_run_figures`` and ``plan`` ask each kind of ``figures.FIGURES`` whether it applies
to these runs: a ``Fig`` with its data (not drawn yet), or the reason it was skipped.
``render`` draws and saves one planned figure, in a drawing worker or inline.
"""

from __future__ import annotations

from pathlib import Path

from .figures import FIGURES
from .figures.base import Context, Fig, sentence


def per_run_figures(ctx: Context) -> tuple[list[Fig], list[str]]:
    """The per-run figures (``ctx.per_run_max`` at most) and notes on the runs left out."""
    return _ask(ctx, per_run=True)


def plan(ctx: Context) -> tuple[list[Fig], list[str]]:
    """The aggregate figures that apply (data ready, not drawn yet), and the reasons for
    the skipped ones."""
    return _ask(ctx, per_run=False)


def _ask(ctx: Context, per_run: bool) -> tuple[list[Fig], list[str]]:
    figs: list[Fig] = []
    skipped: list[str] = []
    for kind in FIGURES.values():
        if kind.per_run == per_run:
            for item in kind.plan(ctx):
                if isinstance(item, Fig) and item.key:
                    item.caption += sentence(item.key)
                (figs if isinstance(item, Fig) else skipped).append(item)
    return figs, skipped


def job(fig: Fig, fig_dir: Path, formats) -> tuple:
    """What ``render`` needs to draw ``fig`` (sent to a worker: data, no functions)."""
    return fig.stem, fig.kind, fig.args, fig.key, fig_dir, formats


def render(item: tuple) -> tuple[str, list[Path] | str | None]:
    """Draw and save one figure (a ``job``): its files, None when there was nothing to
    draw, or the error as text. A figure with a ``key`` gets it in its legend."""
    stem, kind, args, key, fig_dir, formats = item
    from .figure_files import save
    from .style import STYLE, plt, unconverged_key

    try:
        fig = FIGURES[kind].draw(*args)
        if fig is None:
            return stem, None
        if key:
            with plt.rc_context(STYLE):
                unconverged_key(fig, key)
        return stem, save(fig, fig_dir, stem, formats)
    except Exception as exc:  # noqa: BLE001 - one bad figure must not lose the report
        return stem, f"{type(exc).__name__}: {exc}"
