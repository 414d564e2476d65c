"""The web page in real headless Chromium (Playwright, the system's /usr/bin/chromium): paste a
transcript or upload a recording, ask, and see the API's answer marked in the transcript."""

import os
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SPOKENQA_CHROMIUM", "/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason=f"no Chromium at {CHROMIUM} (run scripts/setup_debian.sh, or set SPOKENQA_CHROMIUM)",
)
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
httpx = pytest.importorskip("httpx")

from conftest import ROOT

BRIDGE = ROOT / "tests" / "data" / "bridge_1932.wav"
CONTEXT = (
    "the old harbor lighthouse was built in eighteen seventy two by a local stone mason named thomas reed. "
    "it stands thirty one meters tall and its lamp can be seen twenty miles out at sea."
)
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required"]


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def open_page(browser, server):
    """The page of `server` in a fresh context; yields it, then checks that there were no script
    errors or CSP violations and that no request left the server."""
    context = browser.new_context(viewport={"width": 900, "height": 1000})
    page = context.new_page()
    page.requests, page.problems, page.allowed = [], [], ()
    page.on("request", lambda r: page.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.goto(server.url + "/")
    yield page
    problems = [p for p in page.problems if not any(a in p for a in page.allowed)]
    assert not problems, problems  # no script errors, no CSP violations
    assert all(u.startswith(server.url + "/") for u in page.requests), page.requests  # nothing external
    context.close()


@pytest.fixture
def page(browser, live_server):
    yield from open_page(browser, live_server)


@pytest.fixture(scope="module")
def recording_archive(tiny_checkpoint, tiny_model_dir, tmp_path_factory):
    """`serve --index` over an archive of one recording (tests/data/bridge_1932.wav, transcribed
    by pocketsphinx) with threshold 0: every answer comes from the recording, none is refused."""
    from conftest import SERVE_LIMITS

    from spokenqa.archive import index
    from spokenqa.serve.app import create_app
    from spokenqa.serve.server import BackgroundServer

    folder = tmp_path_factory.mktemp("recording-archive")
    shutil.copy(BRIDGE, folder / "bridge_1932.wav")
    index.build(folder / "archive.sqlite", [folder / "bridge_1932.wav"], encoder=str(tiny_model_dir),
                engine="pocketsphinx")
    app = create_app(tiny_checkpoint, SERVE_LIMITS, index=folder / "archive.sqlite", threshold=0.0,
                     engine="pocketsphinx")
    with BackgroundServer(app) as server:
        yield server


@pytest.fixture
def archive_page(browser, recording_archive):
    yield from open_page(browser, recording_archive)


def wait_js(page, expression, timeout=10.0):
    """Poll `expression` until truthy (wait_for_function needs eval, which the page's CSP forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        time.sleep(0.05)


def api_answers(live_server, question, context):
    r = httpx.post(live_server.url + "/v1/answer", json={"context": context, "questions": [question], "top_k": 5})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]["answers"]


def test_pasted_transcript_answer_is_marked(page, live_server):
    expect = playwright_api.expect
    question = "when was the lighthouse built"
    page.get_by_label("Transcript text", exact=True).fill(CONTEXT)
    page.get_by_label("Question", exact=True).fill(question)
    page.get_by_label("Question", exact=True).press("Enter")  # keyboard: Enter submits
    mark = page.locator("#highlight mark")
    mark.wait_for()
    answers = api_answers(live_server, question, CONTEXT)
    assert mark.inner_text() == answers[0]["text"]
    assert page.locator("#highlight").inner_text() == CONTEXT  # the whole transcript, one span marked
    expect(page.locator("#answer-summary")).to_contain_text(f"score {answers[0]['score']:.3f}")
    assert page.locator("#answer-live").get_attribute("aria-live") == "polite"
    expect(page.locator("#nbest li")).to_have_count(len(answers))
    expect(page.get_by_role("button", name="play answer")).to_be_hidden()  # no audio here
    expect(page.locator("#archive")).to_be_hidden()  # no archive on this server

    # Another answer of the n-best list, chosen with the keyboard.
    second = page.locator("#nbest button.nb").nth(1)
    second.focus()
    page.keyboard.press("Enter")
    expect(second).to_have_attribute("aria-pressed", "true")
    assert mark.inner_text() == answers[1]["text"]

    # An empty question gets a message, not a request.
    page.get_by_label("Question", exact=True).fill("   ")
    page.get_by_role("button", name="Ask").click()
    expect(page.get_by_role("alert")).to_have_text("Type a question.")


def test_marks_count_code_points_like_the_server(page, live_server):
    context = "🎙️ 𝄞 " + CONTEXT  # characters outside the BMP: two UTF-16 units each in JS
    page.get_by_label("Transcript text", exact=True).fill(context)
    page.get_by_label("Question", exact=True).fill("who built the lighthouse")
    page.get_by_role("button", name="Ask").click()
    page.locator("#highlight mark").wait_for()
    answers = api_answers(live_server, "who built the lighthouse", context)
    assert page.locator("#highlight mark").inner_text() == answers[0]["text"]
    assert page.locator("#highlight").inner_text() == context


def test_server_error_is_shown(page, live_server):
    page.allowed = ("status of 422",)  # Chromium logs the failed request itself
    page.get_by_label("Transcript text", exact=True).fill("word " * 1000)  # over the test server's context limit
    page.get_by_label("Question", exact=True).fill("what")
    page.get_by_role("button", name="Ask").click()
    playwright_api.expect(page.get_by_role("alert")).to_contain_text("at most")


def test_recording_answer_plays_from_its_start(page, live_server, tmp_path):
    expect = playwright_api.expect
    page.get_by_label("Recording (WAV, FLAC, OGG or MP3)").set_input_files(str(BRIDGE))
    page.get_by_role("button", name="Transcribe").click()
    text = "the bridge was built in nineteen thirty two."
    expect(page.get_by_label("Transcript text", exact=True)).to_have_value(text, timeout=30_000)
    expect(page.locator("#audio-status")).to_contain_text("Transcribed 2.6 s")
    question = "when was the bridge built"
    page.get_by_label("Question", exact=True).fill(question)
    page.get_by_role("button", name="Ask").click()
    page.locator("#highlight mark").wait_for()
    answers = api_answers(live_server, question, text)
    assert page.locator("#highlight mark").inner_text() == answers[0]["text"]

    # Times come from the uploaded transcript: the page asked with its transcript_id.
    play = page.get_by_role("button", name="play answer")
    expect(play).to_be_visible()
    start, end = float(play.get_attribute("data-start")), float(play.get_attribute("data-end"))
    assert 0 <= start < end <= 2.64, "a three-word answer spans time"
    expect(page.locator("#answer-summary")).to_contain_text(f"at {start:.2f} s")
    wait_js(page, "document.getElementById('audio').readyState >= 1")
    play.click()
    now = page.evaluate("document.getElementById('audio').currentTime")
    assert start - 0.05 <= now <= end + 1.0, (now, start, end)  # it starts at the answer
    wait_js(page, "document.getElementById('audio').paused")  # and stops at its end
    stopped = page.evaluate("document.getElementById('audio').currentTime")
    assert end - 0.05 <= stopped <= end + 1.0, (stopped, end)

    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    if os.environ.get("SPOKENQA_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["SPOKENQA_SCREENSHOT"])


# --- archive mode (serve --index) ------------------------------------------------------------


def clock(seconds: float) -> str:
    """The page's mm:ss."""
    t = int(seconds)
    return f"{t // 60:02d}:{t % 60:02d}"


def archive_answers(server, question):
    r = httpx.post(server.url + "/v1/answer", json={"questions": [question], "top_k": 3})
    assert r.status_code == 200, r.text
    return r.json()["results"][0]


def test_archive_answers_name_the_recording_mark_the_span_and_play_from_it(archive_page, recording_archive):
    expect, page = playwright_api.expect, archive_page
    expect(page.get_by_role("heading", name="Ask the archive")).to_be_visible()
    expect(page.locator("#archive-about")).to_have_text("One question over 1 document (1 passage, 3 s of audio).")
    question = "when was the bridge built"
    page.get_by_label("Question for the archive").fill(question)
    page.get_by_label("Question for the archive").press("Enter")
    items = page.locator("#archive-answers li")
    items.first.wait_for()
    result = archive_answers(recording_archive, question)
    assert result["abstained"] is False
    expect(items).to_have_count(len(result["answers"]))
    for item, a in zip(items.all(), result["answers"], strict=True):
        assert item.locator(".doc").inner_text() == "bridge_1932.wav"
        assert item.locator(".time").inner_text() == clock(a["start_s"])
        assert item.locator("mark").inner_text() == a["text"]  # the answer, marked in its passage
        assert item.locator(".passage").inner_text() == a["passage"]["text"]
    best = result["answers"][0]
    expect(page.locator("#archive-summary")).to_contain_text(
        f"“{best['text']}” in bridge_1932.wav at {clock(best['start_s'])}")
    assert page.locator("#archive-live").get_attribute("aria-live") == "polite"
    expect(page.locator("#archive-hint")).to_contain_text("no calibration")  # the tiny reader has none

    # Play: the recording from the server, from the answer's second (not from the start).
    play = items.first.get_by_role("button", name=f"play from {clock(best['start_s'])} in bridge_1932.wav")
    play.focus()
    page.keyboard.press("Enter")
    wait_js(page, "(a => a.readyState >= 1 && (!a.paused || a.ended))(document.getElementById('archive-audio'))")
    audio = page.evaluate("(a => [a.src, a.currentTime, a.duration])(document.getElementById('archive-audio'))")
    assert audio[0] == recording_archive.url + best["document"]["audio_url"]
    assert best["start_s"] - 0.05 <= audio[1] <= audio[2], (audio, best["start_s"])
    expect(page.locator("#archive-now")).to_have_text(f"Playing bridge_1932.wav from {clock(best['start_s'])}.")

    # The transcript mode is still there, below.
    expect(page.get_by_label("Transcript text", exact=True)).to_be_visible()
    if os.environ.get("SPOKENQA_ARCHIVE_SCREENSHOT"):
        page.screenshot(path=os.environ["SPOKENQA_ARCHIVE_SCREENSHOT"], full_page=True)


def test_archive_says_not_in_this_archive(archive_page, recording_archive, monkeypatch):
    """With the server's threshold at 1 (as `serve --threshold 1`), no answer of the untrained
    reader is sure enough: the page says so, and lists nothing."""
    expect, page = playwright_api.expect, archive_page
    monkeypatch.setattr(recording_archive.app.state.service.archive, "threshold", 1.0)
    question = "who painted the mona lisa"
    assert archive_answers(recording_archive, question) == {
        "question": question, "abstained": True, "threshold": 1.0, "answers": []}
    page.get_by_label("Question for the archive").fill(question)
    page.get_by_role("button", name="Ask the archive").click()
    expect(page.locator("#archive-summary")).to_have_text(
        f"Not in this archive: no answer to “{question}” is likely enough to be right (100% needed).")
    expect(page.locator("#archive-answers li")).to_have_count(0)
    page.get_by_label("Question for the archive").fill("  ")
    page.get_by_role("button", name="Ask the archive").click()
    expect(page.locator("#archive-error")).to_have_text("Type a question.")
