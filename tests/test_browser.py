"""Lesson 02 in a real browser: JupyterLab on 127.0.0.1, headless Chromium (Debian's package) driven by Playwright.

Runs every cell, checks that the memory calculator widget rendered, drags its first slider (the size) and checks that
the figure it shows changed and, once the drag has settled, that the caption states the size the slider's readout
shows (the panel is for the controls' settings, not for a position the handle passed on the way). Saves screenshots
under build/. Skips only when no Chromium executable can be found.
Set COURSE_BROWSER_NOTEBOOK to another notebook path to debug the harness on it.
"""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
LESSON = ROOT / "notebooks" / "02_memory_math.ipynb"
BUILD = ROOT / "build"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
RUN_TIMEOUT_MS = 240_000

# The text and images of the output area holding the first slider, without the sliders themselves (their readouts
# change with the value; the figure shown is everything else).
FIGURE_JS = """() => {
  const slider = document.querySelector('.jp-OutputArea .widget-slider');
  if (!slider) return null;
  const area = slider.closest('.jp-OutputArea') || slider.parentElement;
  const copy = area.cloneNode(true);
  copy.querySelectorAll('.widget-slider').forEach(e => e.remove());
  const images = Array.from(area.querySelectorAll('img')).map(i => i.src.length + ':' + i.src.slice(-64));
  const canvases = Array.from(area.querySelectorAll('canvas')).map(c => c.toDataURL().slice(-64));
  return copy.innerText + '|' + images.join(',') + '|' + canvases.join(',');
}"""


# The first slider's readout and the size the calculator's caption says it priced, as numbers at the readout's three
# significant digits (the readout formats with ".3g": "389", "70.8", "1.00e+3").
SIZES_JS = """() => {
  const slider = document.querySelector('.jp-OutputArea .widget-slider');
  if (!slider) return null;
  const area = slider.closest('.jp-OutputArea') || slider.parentElement;
  const readout = slider.querySelector('.widget-readout');
  const size = area.querySelector('.coursekit-memory-size');
  const num = t => t === null ? null : Number(parseFloat(t.replace(/,/g, '')).toPrecision(3));
  return {readout: readout ? readout.textContent : null, caption: size ? size.textContent : null,
          readout_value: readout ? num(readout.textContent) : null, caption_value: size ? num(size.textContent) : null};
}"""
SETTLE_MS = 2_000


def find_chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium-browser"):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab serving a copy of the notebook (so saving never writes outputs into notebooks/)."""
    source = Path(os.environ.get("COURSE_BROWSER_NOTEBOOK", LESSON))
    assert source.is_file(), f"{source} does not exist: the browser test opens lesson 02's memory calculator"
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(source, served / source.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), HF_HUB_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    # Render every cell (JupyterLab 4 otherwise detaches cells far from the viewport, so the calculator's slider can
    # be off the page while its box is read): the lesson is long, and the test drags a slider near its end.
    tracker = tmp_path / "settings" / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text('{"windowingMode": "none"}')
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={served}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=served)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "lab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield {"url": f"{base}/lab/tree/{source.name}?token={token}&reset", "name": source.stem,
               "log": tmp_path / "lab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def run_all_cells(page, tries: int = 4) -> None:
    """Run > Run All Cells once the kernel is idle; again if no cell started (a kernel still connecting drops it)."""
    for _ in range(tries):
        page.wait_for_selector(".jp-StatusBar-TextItem:has-text('Idle')", timeout=90_000)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        try:
            page.wait_for_selector(".jp-InputPrompt:text-matches('\\[(\\*|\\d+)\\]')", timeout=20_000)
            return
        except Exception:
            continue
    raise AssertionError("JupyterLab never started running the cells (kernel not connected?)")


def test_memory_calculator_in_chromium(lab):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium executable (/usr/bin/chromium, chromium or chromium-browser on PATH); "
                    "install Debian's package with `apt-get install chromium` as .ci/run does")
    from playwright.sync_api import sync_playwright

    BUILD.mkdir(exist_ok=True)
    shot = BUILD / f"browser_{lab['name']}.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(lab["url"], wait_until="domcontentloaded", timeout=60_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            run_all_cells(page)
            slider = page.locator(".jp-OutputArea .widget-slider").first
            slider.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
            page.wait_for_function(f"({FIGURE_JS})() !== null && ({FIGURE_JS})().replace(/[|,]/g, '').trim() !== ''",
                                   timeout=60_000)
            slider.evaluate("e => e.scrollIntoView({block: 'center'})")
            page.wait_for_timeout(500)
            before = page.evaluate(FIGURE_JS)
            page.screenshot(path=str(BUILD / f"browser_{lab['name']}_before.png"))

            track = slider.locator(".noUi-target, .slider").first
            handle = slider.locator(".noUi-handle").first
            box, hbox = track.bounding_box(), handle.bounding_box()
            assert box and hbox, "the slider has no visible track or handle"
            start_x, y = hbox["x"] + hbox["width"] / 2, hbox["y"] + hbox["height"] / 2
            # Drag towards whichever end is farther away so the value surely changes.
            target_x = box["x"] + box["width"] * (0.9 if start_x < box["x"] + box["width"] / 2 else 0.1)
            page.mouse.move(start_x, y)
            page.mouse.down()
            page.mouse.move(target_x, y, steps=12)
            page.mouse.up()
            page.wait_for_function(f"(before) => ({FIGURE_JS})() !== before", arg=before, timeout=60_000)
            # the drag has settled when the caption states the readout's size and stays so
            matching = f"(() => {{ const s = ({SIZES_JS})(); return s && s.readout_value === s.caption_value; }})()"
            page.wait_for_function(matching, timeout=60_000)
            page.wait_for_timeout(SETTLE_MS)
            page.wait_for_function(matching, timeout=60_000)
            sizes = page.evaluate(SIZES_JS)
            after = page.evaluate(FIGURE_JS)
            page.screenshot(path=str(shot))
        except Exception:
            page.screenshot(path=str(shot))
            raise
        finally:
            browser.close()
    assert after != before
    # the caption and the bar are for the size the readout shows (seen once: readout 389, caption for 78.0B)
    assert sizes["readout_value"] is not None and sizes["readout_value"] == sizes["caption_value"], sizes
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert not [e for e in errors if "widget" in e.lower()], errors
