"""report.html opens in a browser with nothing else installed and shows its figures.

Renders the page in headless Chromium (Debian's `chromium`; .ci/run installs it) and
checks the screenshot: figures are the only saturated colour on the page, so a page
whose images failed to load has almost none. Skipped where no Chromium is installed.
"""

import re
import shutil
import subprocess

import numpy as np
import pytest

from bottleneck_cli.report import build_report
from report_fixtures import depth_sweep

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def screenshot(html, png, tmp_path, width=1280, height=6000):
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--window-size={width},{height}", f"--screenshot={png}", html.as_uri()],
                   check=True, capture_output=True, timeout=120)
    import matplotlib.image

    return matplotlib.image.imread(str(png))[..., :3]


def saturated_fraction(rgb) -> float:
    return float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1) > 0.25))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_html_renders_its_figures_in_chromium(tmp_path):
    depth_sweep(tmp_path / "runs", depths=(4, 8, 16), seeds=(0,))
    result = build_report([tmp_path / "runs"], per_run_max=2)
    shown = screenshot(result.html, tmp_path / "page.png", tmp_path)
    assert saturated_fraction(shown) > 0.02, "the page shows (almost) no figure pixels"
    # The same page with its images removed: the colour came from the figures.
    text, n_images = re.subn(r'src="data:image/png;base64,[^"]*"', 'src=""',
                             result.html.read_text())
    assert n_images >= 3
    stripped = tmp_path / "no_images.html"
    stripped.write_text(text)
    blank = screenshot(stripped, tmp_path / "blank.png", tmp_path)
    assert saturated_fraction(blank) < saturated_fraction(shown) / 5


# A script appended to a copy of the page: it clicks headers as a reader would and
# writes what the page then shows into <pre id="probe">, read back with --dump-dom.
PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.querySelector("#summary ~ .scroll table");
  var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (c) {
    return c.textContent; });
  function column(name) {
    var i = heads.indexOf(name);
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return r.cells[i].textContent; });
  }
  var th = table.tHead.rows[0].cells[heads.indexOf("test_loss")];
  var out = {before: column("run")};
  th.click(); out.up = column("test_loss"); out.up_runs = column("run");
  out.up_mark = th.getAttribute("aria-sort");
  th.click(); out.down = column("test_loss"); out.down_mark = th.getAttribute("aria-sort");
  table.tHead.rows[0].cells[heads.indexOf("run")].click(); out.by_name = column("run");
  var box = table.parentNode, style = getComputedStyle(box);
  out.overflow_x = style.overflowX;
  out.wider = box.scrollWidth > box.clientWidth;
  box.scrollLeft = box.scrollWidth;
  var last = table.tHead.rows[0].cells[heads.length - 1].getBoundingClientRect();
  out.last_visible = last.right <= box.getBoundingClientRect().right + 1;
  var pre = document.createElement("pre"); pre.id = "probe";
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


def probe(html, tmp_path, width=900) -> dict:
    import html as htmllib
    import json

    page = tmp_path / "probe.html"
    page.write_text(html.read_text().replace("</body>", PROBE + "</body>"))
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                          f"--window-size={width},900", "--virtual-time-budget=5000",
                          "--dump-dom", page.as_uri()],
                         check=True, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(htmllib.unescape(found.group(1)))


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_report_tables_sort_on_click_and_scroll_sideways_in_chromium(tmp_path):
    from report_fixtures import make_run

    runs = depth_sweep(tmp_path / "runs", depths=(4, 8, 16), seeds=(0, 1, 2), full=True)
    make_run(tmp_path / "runs" / "unfinished", status="running", depth=4, seed=9)
    (runs[0] / "metrics.jsonl").write_text("")  # no records: an empty test_loss cell
    (runs[0] / "summary.json").unlink()
    result = build_report([tmp_path / "runs"], per_run_max=0)
    seen = probe(result.html, tmp_path)

    def numbers(cells):
        return [float(c) for c in cells if c]

    assert seen["up_mark"] == "ascending" and seen["down_mark"] == "descending"
    assert numbers(seen["up"]) == sorted(numbers(seen["up"]))
    assert numbers(seen["down"]) == sorted(numbers(seen["down"]), reverse=True)
    assert len(set(numbers(seen["up"]))) > 2  # the order was a real test
    assert seen["up"][-1] == "" and seen["down"][-1] == ""  # empty cells last both ways
    assert seen["up_runs"] != seen["before"]
    assert seen["by_name"] == sorted(seen["before"], key=lambda n: [
        int(t) if t.isdigit() else t for t in re.split(r"(\d+)", n)])  # numbers as numbers
    assert seen["overflow_x"] in ("auto", "scroll") and seen["wider"]
    assert seen["last_visible"], "the table's last column cannot be scrolled into view"
