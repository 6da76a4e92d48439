"""The HTML report in a real browser: headless Chromium renders the page of a day of real
chained audit events (no broker needed), shows every corridor, and prints one corridor per
page. `make install` installs Debian's chromium (the `tools` target)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from corridor.core.report import (
    Window,
    build_report,
    chain_statuses,
    html_page,
    report_document,
    report_layout,
    split_log,
)
from tests.unit.report_fixtures import HOUR, T0, realistic_log, sample_config

pytestmark = pytest.mark.integration
TIMEOUT_S = 120


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium not found: run `make install` (the tools target installs "
                    "Debian's chromium)")
    return found


def _run(tmp_path: Path, page: Path, *args: str) -> str:
    # Root needs --no-sandbox; a profile per test keeps parallel runs apart.
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
         f"--user-data-dir={tmp_path / 'profile'}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def page(tmp_path: Path) -> tuple[Path, list[str]]:
    """The report page on disk, and the corridors it reports on."""
    config = sample_config(tmp_path)
    log = split_log(realistic_log())
    doc = report_document(build_report(log.events, config, Window(T0, T0 + 24 * HOUR),
                                       statuses=chain_statuses(log.chains),
                                       generated_ms=T0 + 30 * HOUR))
    path = tmp_path / "report.html"
    path.write_text(html_page(report_layout(doc)), encoding="utf-8")
    return path, [c["corridor"] for c in doc["corridors"]]


def test_chromium_renders_every_corridor(tmp_path: Path, page: tuple[Path, list[str]]) -> None:
    path, corridors = page
    shot = tmp_path / "report.png"
    _run(tmp_path, path, f"--screenshot={shot}", "--window-size=1280,1600",
         "--hide-scrollbars")
    print(f"screenshot: {shot}")
    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1600)
    histogram = image.histogram()
    pixels = image.size[0] * image.size[1]
    assert max(histogram) < pixels, "the screenshot is one colour"
    dark = sum(histogram[:100])  # text, headings and rules on a white page
    assert 0.005 * pixels < dark < 0.5 * pixels
    dom = _run(tmp_path, path, "--dump-dom")
    found = re.findall(r'<section class="corridor" id="corridor-[^"]+" data-corridor="([^"]+)">'
                       r'\s*<h2>Corridor ([^<]+)</h2>', dom)
    assert sorted(name for name, _ in found) == sorted(corridors)
    assert all(name == heading for name, heading in found)


def test_printed_report_puts_each_corridor_on_its_own_page(
        tmp_path: Path, page: tuple[Path, list[str]]) -> None:
    path, corridors = page
    pdf = tmp_path / "report.pdf"
    _run(tmp_path, path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    print(f"pdf: {pdf}")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    # The totals page, then a page break before each corridor.
    assert pages >= 1 + len(corridors)
