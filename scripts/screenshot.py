"""Make docs/img/page.png: the page with a recording transcribed and a question answered.

Usage: python scripts/screenshot.py [CHECKPOINT [OUT.png]]   (needs /usr/bin/chromium; default: the shipped model)
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

from spokenqa.serve.app import create_app
from spokenqa.serve.server import BackgroundServer

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main(checkpoint: str | None = None, out: str = str(ROOT / "docs" / "img" / "page.png")) -> None:
    with BackgroundServer(create_app(checkpoint)) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_context(viewport={"width": 900, "height": 1000}).new_page()
        page.goto(server.url + "/")
        page.get_by_label("Recording (WAV, FLAC, OGG or MP3)").set_input_files(str(ROOT / "tests/data/bridge_1932.wav"))
        page.get_by_role("button", name="Transcribe").click()
        page.locator("#audio-status").filter(has_text="Transcribed").wait_for()
        page.get_by_label("Question", exact=True).fill("when was the bridge built")
        page.get_by_role("button", name="Ask").click()
        page.locator("#highlight mark").wait_for()
        page.screenshot(path=out, full_page=True)
        browser.close()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
