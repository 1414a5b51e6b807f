"""Writing a drawn figure to its files: laid out once, then saved in each format with
reproducible metadata (no dates or versions stamped in)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .style import STYLE, _place, plt


def save(fig, out_dir: Path, stem: str, formats: Sequence[str] = ("png", "pdf")) -> list[Path]:
    """Write ``fig`` as ``out_dir/stem.<fmt>`` for each format, close it, return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        with plt.rc_context(STYLE):
            freeze(fig)
            for fmt in formats:
                path = out_dir / f"{stem}.{fmt}"
                extra = {"pil_kwargs": {"compress_level": 3}} if fmt == "png" else {}
                fig.savefig(path, format=fmt, metadata=_metadata(fmt), **extra)
                paths.append(path)
    finally:
        plt.close(fig)
    return paths


def freeze(fig) -> None:
    """Lay ``fig`` out once (its layout engine) and keep that layout for every format
    saved: the layout pass costs about as much as drawing, once per save otherwise."""
    if hasattr(fig, "bncli_fixed"):
        _place(fig)
    engine = fig.get_layout_engine()
    if engine is not None and engine.adjust_compatible is False:
        engine.execute(fig)
        fig.set_layout_engine("none")


def _metadata(fmt: str) -> dict:
    # Reproducible files: no creation dates or software versions stamped in.
    if fmt == "png":
        return {"Software": None}
    if fmt == "pdf":
        return {"Creator": None, "Producer": None, "CreationDate": None}
    if fmt == "svg":
        return {"Date": None}
    return {}
