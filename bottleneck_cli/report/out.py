"""The report folder: where a report goes, and which of its files bncli may replace.

A report writes only into its folder and deletes only files it wrote. The folder's
manifest (``.bncli-report.json``) lists every file the report wrote, with its size and
modification time; a re-run replaces or deletes only listed files that are unchanged.
Files are listed (as *pending*, without size) before they are written, so a report
killed half-way leaves a folder the next one still cleans up. A folder that is not
empty and holds no manifest is not the report's to write into (a bncli report from
before manifests, recognised by its report.html, is overwritten but never cleaned).
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import rundir as rd
from .load import ReportError

MANIFEST = ".bncli-report.json"
HTML = "report.html"
HTML_MARK = "<title>bncli report"  # how a report.html from before manifests starts


def writable(folder: Path) -> str:
    """"" when ``folder`` can be created and written, else why not (the nearest existing
    folder on its path refuses writing)."""
    p = Path(os.path.abspath(folder))
    while not p.exists():
        p = p.parent
    if not p.is_dir():
        return f"{p} is a file"
    return "" if os.access(p, os.W_OK | os.X_OK) else f"{p} is not writable"


def choose(out: Path | None, first: Path) -> tuple[Path, str]:
    """The report folder, and a line to show when it is not the one asked for: ``out``,
    else ``<first>/report``, else (input tree not writable) ``./report-<name of first>``."""
    if out is not None:
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ReportError(f"--out {out} exists and is not a folder")
        why = writable(out)
        if why:
            raise ReportError(f"cannot write the report to --out {out}: {why}")
        return out, ""
    default = Path(first) / "report"
    why = writable(default)
    if not why:
        return default, ""
    fallback = Path(f"report-{Path(os.path.abspath(first)).name or 'runs'}")
    if writable(fallback) or (fallback.exists() and not fallback.is_dir()):
        raise ReportError(f"cannot write the report to {default} ({why}); choose a folder "
                          f"with --out")
    return fallback, f"{default} cannot be written ({why}); report folder: {fallback}"


class ReportFolder:
    """The files of one report folder that bncli wrote, and the claim on new ones."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.legacy = False  # a report from before manifests: overwrite, never delete
        self.old = self._read()  # relative path -> [size, mtime_ns] or None (pending)
        self.listed = dict(self.old)

    def _read(self) -> dict:
        """The manifest's entries; ReportError when the folder is not a report's."""
        if not self.root.exists() or not any(self.root.iterdir()):
            return {}
        try:
            files = rd.read_json(self.root / MANIFEST)["files"]
            if isinstance(files, dict):
                return {k: v for k, v in files.items() if self._inside(k)}
        except FileNotFoundError:
            if self._legacy_report():
                self.legacy = True
                return {}
        except (OSError, ValueError, KeyError, TypeError):
            raise ReportError(f"{self.root / MANIFEST} is damaged; choose another --out or "
                              f"delete that folder yourself") from None
        raise ReportError(f"{self.root} is not empty and holds no bncli report: bncli writes "
                          f"only into a new or empty folder or its own report; choose --out")

    def _legacy_report(self) -> bool:
        try:
            with open(self.root / HTML, encoding="utf-8", errors="replace") as fh:
                return HTML_MARK in fh.read(400)
        except OSError:
            return False

    def _inside(self, rel: str) -> bool:
        """A manifest entry names a file below the folder (never ``..`` or absolute)."""
        return isinstance(rel, str) and bool(rel) and not os.path.isabs(rel) \
            and ".." not in Path(rel).parts

    def _ours(self, rel: str) -> bool:
        """The file at ``rel`` is one this report folder's manifest lists, unchanged."""
        if rel not in self.listed:
            return False
        entry = self.listed[rel]
        if entry is None:
            return True
        try:
            st = (self.root / rel).stat()
        except OSError:
            return False
        return [st.st_size, st.st_mtime_ns] == list(entry)

    def claim(self, paths) -> None:
        """List ``paths`` (inside the folder) as about to be written; ReportError when one
        exists and is not the report's own."""
        rels = [Path(p).relative_to(self.root).as_posix() for p in paths]
        for rel in rels:
            if (self.root / rel).exists() and not (self.legacy or self._ours(rel)):
                raise ReportError(f"{self.root / rel} was not written by bncli report; move it "
                                  f"or choose another --out")
        self.listed.update(dict.fromkeys(rels))
        self._write(self.listed)

    def finish(self, written) -> None:
        """Delete the previous report's files that this one did not rewrite (if unchanged)
        and list exactly ``written``."""
        rels = {Path(p).relative_to(self.root).as_posix() for p in written}
        for rel in set(self.old) - rels:
            if self._ours(rel):
                (self.root / rel).unlink(missing_ok=True)
        entries = {}
        for rel in sorted(rels):
            st = (self.root / rel).stat()
            entries[rel] = [st.st_size, st.st_mtime_ns]
        self._write(entries)

    def _write(self, files: dict) -> None:
        rd.write_json(self.root / MANIFEST, {"written_by": "bncli report", "files": files})
