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
