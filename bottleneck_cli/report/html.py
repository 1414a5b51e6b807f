"""The single self-contained ``report.html``: tables, figures as base64 PNG, commands
and the config that produced the runs. No external files, and one small inline script
(click a column header to sort a table): it opens in any browser, offline. Wide tables
scroll sideways with the run name kept in view. Paths on the page are relative to it.
``build`` gathers the content; this module only lays it out.
"""

from __future__ import annotations

import base64
import html
import os
import time
from pathlib import Path
from typing import Sequence

import pandas as pd

from .format import fmt

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;
max-width:1250px;padding:0 1em;color:#222;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;border-bottom:1px solid #ddd;
padding-bottom:.2em;margin-top:1.8em} .meta{color:#555}
table{border-collapse:separate;border-spacing:0;font-size:12px;margin:0;
border-left:1px solid #ddd;border-top:1px solid #ddd}
th,td{border:0 solid #ddd;border-width:0 1px 1px 0;padding:2px 6px;text-align:right;
white-space:nowrap}
th{background:#f3f3f3;position:sticky;top:0;z-index:1;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \25B2"} th[aria-sort=descending]::after{content:" \25BC"}
td.l,th.l{text-align:left} td{background:#fff} tr:nth-child(even) td{background:#fafafa}
th:first-child,td:first-child{position:sticky;left:0;z-index:1} th:first-child{z-index:2}
.scroll{max-height:520px;overflow:auto;border:1px solid #eee;margin:.5em 0;
width:calc(100vw - 3em);max-width:max-content;min-width:100%;position:relative;
left:50%;transform:translateX(-50%)}
.st-finished{color:#18794e} .st-diverged{color:#c0392b;font-weight:600}
.st-unreadable{color:#8e44ad;font-weight:600} .st-other{color:#b9770e;font-weight:600}
figure{margin:1.2em 0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#444;max-width:1000px} .files{color:#777;font-size:12px}
pre{background:#f6f8fa;padding:.7em;overflow:auto;font-size:12px;max-height:420px}
.problems li{color:#a04000} .skipped li{color:#666}
"""


# Click a header: sort the rows shown by that column (numbers as numbers, empty cells
# last), again: the other way round.
SORT_SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.tHead.rows[0].cells;
  Array.prototype.forEach.call(heads, function (th, col) {
    th.title = "sort by " + th.textContent;
    th.addEventListener("click", function () {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var text = row.cells[col].textContent.trim(), num = Number(text);
        return text === "" ? null : (isNaN(num) ? text : num);
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === null || y === null) { return (x === null) - (y === null); }
        if (typeof x === typeof y) {
          return dir * (typeof x === "number" ? x - y :
                        x.localeCompare(y, undefined, {numeric: true}));
        }
        return dir * (typeof x === "number" ? -1 : 1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


COLUMN_NOTES = {  # explained under the summary table when the column is there
    "closed_form": "closed_form: L·Σ s_i(M)^(2/L), the smallest ||θ||² of a depth-L linear "
                   "net computing the trained end-to-end matrix M (SCIENCE.md §4); "
                   "closed_form_target: the same for the target A.",
    "distinct_neurons": "distinct_neurons: distinct active neuron directions, the largest "
                        "over hidden layers (neurons_Z: per layer; docs/metrics.md).",
}


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def table(df: pd.DataFrame, max_rows: int | None = None, status_col: str | None = "status") -> str:
    """An HTML table of ``df`` (escaped, numbers to 4 significant digits)."""
    shown = df if max_rows is None else df.head(max_rows)
    text_cols = {c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])}
    head = "".join(f"<th{_cls('l' if c in text_cols else '')}>{_e(c)}</th>" for c in df.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, rec):
            cls = "l" if c in text_cols else ""
            if c == status_col:
                st = str(v)
                cls += " st-" + (st if st in ("finished", "diverged", "unreadable") else "other")
            cells.append(f"<td{_cls(cls.strip())}>{_e(fmt(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(df) > max_rows:
        more = (f"<p class=meta>{len(df) - max_rows} more rows in summary.csv (a click on a "
                f"header sorts the {max_rows} shown)</p>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>" + more)


def _cls(name: str) -> str:
    return f' class="{name}"' if name else ""


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_e(Path(path).stem)}">'


def heading(paths: Sequence[Path], page_dir: Path) -> tuple[str, list[str]]:
    """The page's title (the run folders' names) and the run folders as paths relative
    to the page's folder ``page_dir``, so the page reads the same on any machine."""
    names = [os.path.basename(os.path.abspath(p)) or os.path.abspath(p) for p in paths]
    here = os.path.abspath(page_dir)
    return f"bncli report: {', '.join(names)}", [
        os.path.relpath(os.path.abspath(p), here) for p in paths]


def render(*, title: str, runs: int, counts: dict, swept: Sequence[str], summary: pd.DataFrame,
           by_setting: pd.DataFrame | None, fits: pd.DataFrame, problems: Sequence[str],
           figures: Sequence[tuple[str, str, Path, Sequence[str]]], skipped: Sequence[str],
           commands: Sequence[str], config: tuple[str, str], ignored: Sequence[str] = (),
           max_rows: int = 300, sources: Sequence[str] = ()) -> str:
    """The page as one string. ``figures``: (title, caption, png path, file names);
    ``ignored``: config keys that differ between runs but do not change what is trained;
    ``sources``: the run folders, relative to the page (``heading``)."""
    parts = [f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
             f"<style>{CSS}</style></head><body>", f"<h1>{_e(title)}</h1>"]
    status = ", ".join(f"{n} {_e(k)}" for k, n in counts.items())
    where = f" in {_e(', '.join(sources))} (relative to this page)" if sources else ""
    parts.append(f"<p class=meta>{runs} runs ({status}){where} · swept: "
                 f"{_e(', '.join(swept) or 'nothing')}"
                 + (f" · not compared (they do not change what is trained): "
                    f"{_e(', '.join(ignored))}" if ignored else "") + " · generated "
                 f"{time.strftime('%Y-%m-%d %H:%M:%S')}</p>")
    nav = ["summary"] + (["settings"] if by_setting is not None else []) + \
        (["depth-fit"] if len(fits) else []) + ["problems", "figures", "commands"]
    parts.append("<p>" + " · ".join(f'<a href="#{n}">{n}</a>' for n in nav) + "</p>")

    parts.append('<h2 id="summary">Summary (one row per run)</h2>')
    parts.append("<p class=meta>Final values; click a column header to sort. bottleneck_rank: median centered rank of the "
                 "middle representations (bottleneck_rank_unc: uncentered); near_one: median "
                 "near-one count of the middle weights; ranks_Z / ranks_W: per-layer ranks of "
                 "Z_l (centered) and W_l." + "".join(
                     f" {_e(note)}" for col, note in COLUMN_NOTES.items()
                     if col in summary.columns) + "</p>")
    parts.append(table(summary, max_rows))
    if by_setting is not None:
        parts.append('<h2 id="settings">Seeds aggregated (mean and std over finished runs)</h2>')
        parts.append(table(by_setting, max_rows, status_col=None))
    if len(fits):
        parts.append('<h2 id="depth-fit">Depth fit: ||θ||² = R0·L + R1</h2>')
        parts.append("<p class=meta>R0 estimate = slope (rank), R1 estimate = intercept "
                     "(regularity; R1 ≥ 2·log|Jf|₊). n_runs, n_seeds, n_depths: the points "
                     "each fit used; a fit through fewer than 3 depths is marked unreliable "
                     "(caveat).</p>")
        parts.append(table(fits, None, status_col=None))

    parts.append(f'<h2 id="problems">Problems ({len(problems)})</h2>')
    if problems:
        items = "".join(f"<li>{_e(p)}</li>" for p in problems[:500])
        extra = f"<li>... and {len(problems) - 500} more</li>" if len(problems) > 500 else ""
        parts.append(f"<ul class=problems>{items}{extra}</ul>")
    else:
        parts.append("<p>None: every run finished and was readable.</p>")

    parts.append('<h2 id="figures">Figures</h2>')
    for fig_title, caption, png, files in figures:
        parts.append(f"<figure><h3>{_e(fig_title)}</h3>{_img(png)}<figcaption>{_e(caption)} "
                     f"<span class=files>(figures/{_e(', '.join(files))})</span></figcaption>"
                     f"</figure>")
    if skipped:
        parts.append("<h3>Not drawn</h3><ul class=skipped>"
                     + "".join(f"<li>{_e(s)}</li>" for s in skipped) + "</ul>")

    parts.append('<h2 id="commands">Commands and config</h2>')
    parts.append("<p class=meta>Each run again, from its recorded overrides:</p>")
    parts.append("<pre>" + _e("\n".join(commands)) + "</pre>")
    name, text = config
    if text:
        parts.append(f"<p class=meta>Resolved config.yaml of {_e(name)} (swept keys differ "
                     f"between runs: {_e(', '.join(swept) or 'none')}):</p>")
        parts.append("<pre>" + _e(text) + "</pre>")
    parts.append(f"<script>{SORT_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)
