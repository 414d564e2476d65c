"""Reliability of the HTTP server (`spokenqa serve`), beyond tests/test_serve.py:

- property-based (hypothesis): the answer request model on arbitrary JSON for every field gives a
  valid model or a ValidationError, never another exception, and its error message formats;
  arbitrary bodies, content types and Range headers over real HTTP (uvicorn on loopback, the
  `live_server` fixture) never give a 5xx and every error is `{"error": "..."}`;
- schemathesis (CLI, in a subprocess) against the live server's OpenAPI schema, no 5xx allowed;
- a burst of 200 concurrent /v1/answer requests: 200s and documented 503 back-pressure only;
- slow and oversized clients: a body trickled slower than `max_body_seconds` gets 408 and the
  connection closed while /health keeps answering; chunked bodies over the limit get 413;
- memory: the server's RSS before and after 16 clients posting for 6 s (30 s with
  SPOKENQA_LOAD_SECONDS=30), `spokenqa serve` in a subprocess (`slow`).

See docs/RELIABILITY.md ("Server") for the numbers measured with these.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

httpx = pytest.importorskip("httpx")

from conftest import ROOT, SAMPLE, SERVE_LIMITS, serving_line

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
CONTEXT = "the old harbor lighthouse was built in eighteen seventy two by a stone mason named thomas reed."

# --- strategies -------------------------------------------------------------------------------

ANY_CHAR = st.characters(exclude_categories=[])  # every code point, lone surrogates included
TRICKY = "ab .İΣς\u0301\u200f東😀\x00\t\n\udc00"
any_text = st.one_of(st.text(st.sampled_from(TRICKY), max_size=12), st.text(max_size=12),
                     st.text(ANY_CHAR, max_size=6))
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
                        st.floats(allow_nan=True, allow_infinity=True), any_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(any_text, inner, max_size=3)), max_leaves=8)

FIELD_LIMITS = {"max_questions": 3, "max_question_chars": 12, "max_context_chars": 40, "max_top_k": 5}
# Per field: values near the limits above (and the live server's, which are larger), or any JSON.
question = st.one_of(st.text("ab ?", max_size=14), st.text(" \t\n\u3000", max_size=3), any_text)
fields = {
    "questions": st.one_of(st.lists(question, max_size=5), json_value),
    "context": st.one_of(st.text("ab .", max_size=45), st.text(" \t\n", max_size=3), any_text, json_value),
    "transcript_id": st.one_of(st.from_regex(r"[A-Za-z0-9_-]{0,70}", fullmatch=True), any_text, json_value),
    "top_k": st.one_of(st.integers(-2, 25), st.sampled_from([1.0, 2.5, True, False, "3", "1e1", 1e400]),
                       json_value),
    # over the archive only (serve --index)
    "passages": st.one_of(st.integers(-2, 25), json_value),
    "mode": st.one_of(st.sampled_from(["hybrid", "bm25", "dense", "sparse", "BM25"]), json_value),
    "threshold": st.one_of(st.floats(-0.5, 1.5), st.sampled_from([0, 1, "0.5", float("nan")]), json_value),
}
answer_body = st.fixed_dictionaries({}, optional={**fields, "extra": json_value})


def body_bytes(value, ascii_only: bool) -> bytes:
    """JSON text of `value`; with ascii_only False, lone surrogates become invalid UTF-8 bytes."""
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


# --- 1. the request model -----------------------------------------------------------------------


def _check_model_outcome(model, limits, archive, value, mode: str) -> None:
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from spokenqa.serve.handlers import validation_message

    try:
        if mode == "python":
            m = model.model_validate(value)
        else:
            m = model.model_validate_json(value)
    except ValidationError as e:
        # FastAPI hands these errors, located under "body", to the app's handler: its message
        # must format too.
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        status, message = validation_message(RequestValidationError(errors))
        assert status in (400, 422) and message and "\n" not in message
        return
    if archive:  # at most one; neither: over the archive, whose fields apply only then
        assert m.context is None or m.transcript_id is None
        if not m.over_archive:
            assert m.passages is None and m.mode is None and m.threshold is None
        assert m.passages is None or 1 <= m.passages <= limits.max_passages
        assert m.mode in (None, "hybrid", "bm25", "dense")
        assert m.threshold is None or 0 <= m.threshold <= 1
    else:
        assert (m.context is None) != (m.transcript_id is None)
    assert 1 <= len(m.questions) <= limits.max_questions
    assert all(q.strip() and len(q) <= limits.max_question_chars for q in m.questions)
    assert m.context is None or (m.context.strip() and len(m.context) <= limits.max_context_chars)
    assert isinstance(m.top_k, int) and 1 <= m.top_k <= limits.max_top_k
    m.model_dump_json()  # valid Unicode: nothing that cannot be encoded got through


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "archive"])
def answer_model(request):
    from spokenqa.serve.limits import Limits
    from spokenqa.serve.schemas import answer_request_model

    limits = Limits(**FIELD_LIMITS)
    return answer_request_model(limits, archive=request.param), limits, request.param


@FUZZ
@given(value=st.one_of(answer_body, json_value))
def test_answer_model_python_values(answer_model, value):
    _check_model_outcome(*answer_model, value, "python")


@FUZZ
@given(value=st.one_of(answer_body, json_value), ascii_only=st.booleans())
def test_answer_model_json_text(answer_model, value, ascii_only):
    """The JSON text, as it comes over the wire: NaN/Infinity tokens, `\\udc00` escapes or raw
    lone surrogates (invalid UTF-8) included, parsed by pydantic. (FastAPI itself parses with
    `json.loads` and validates the Python value: the test above, and the HTTP ones below.)"""
    _check_model_outcome(*answer_model, body_bytes(value, ascii_only), "json")


# --- 1. arbitrary bodies over HTTP (the live server) ------------------------------------------


@pytest.fixture(scope="module")
def client(live_server):
    with httpx.Client(base_url=live_server.url, timeout=60) as c:
        yield c


def assert_not_5xx(r) -> None:
    event(f"status {r.status_code}")  # pytest --hypothesis-show-statistics shows the mix
    assert r.status_code < 500, (r.status_code, r.text[:300], r.request.content[:300])
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/json"), r.headers
        data = r.json()
        assert set(data) == {"error"} and data["error"] and "\n" not in data["error"], data


CONTENT_TYPES = st.sampled_from([
    "application/json", "application/json; charset=latin-1", "text/plain", None,
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "multipart/form-data",
    b"application/json; charset=\xed\xb0\x80", b"application/json\xff",
])
good_question = st.from_regex(r"[ab?][ab ?]{0,11}", fullmatch=True)
good_body = st.builds(lambda q, k: json.dumps({"context": CONTEXT, "questions": q, "top_k": k}).encode(),
                      st.lists(good_question, min_size=1, max_size=4), st.integers(1, 10))
raw_body = st.one_of(
    good_body,  # valid: these reach the model
    st.tuples(answer_body, st.booleans()).map(lambda t: body_bytes(*t)),
    st.tuples(json_value, st.booleans()).map(lambda t: body_bytes(*t)),
    st.binary(max_size=80),
)


@FUZZ
@given(body=raw_body, content_type=CONTENT_TYPES)
def test_arbitrary_answer_bodies_never_5xx(client, body, content_type):
    headers = {} if content_type is None else {"content-type": content_type}
    r = client.post("/v1/answer", content=body, headers=headers)
    assert_not_5xx(r)
    if r.status_code == 200:
        sent = json.loads(body)
        results = r.json()["results"]
        assert [x["question"] for x in results] == [" ".join(q.split()) for q in sent["questions"]]
        for x in results:
            assert 1 <= len(x["answers"]) <= sent["top_k"]
            for a in x["answers"]:
                assert CONTEXT[a["start"] : a["end"]] == a["text"]


def _wav(seconds: float = 0.2, rate: int = 8000) -> bytes:
    import io

    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.random.default_rng(0).uniform(-0.1, 0.1, int(seconds * rate)), rate, format="WAV",
             subtype="PCM_16")
    return buf.getvalue()


WAV = _wav()


def mutate(data: bytes, edits: list[tuple[int, int]], cut: int) -> bytes:
    """`data` with some bytes (mostly in the 44-byte header) replaced, and perhaps cut short."""
    out = bytearray(data)
    for pos, value in edits:
        out[pos % len(out)] = value
    return bytes(out[: max(1, len(out) - cut)])


def multipart(boundary: str, name: str, filename: str, data: bytes) -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n\r\n'
    return head.encode("utf-8", "surrogatepass") + data + f"\r\n--{boundary}--\r\n".encode()


upload_data = st.one_of(
    st.binary(max_size=60),
    st.builds(mutate, st.just(WAV), st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=4),
              st.sampled_from([0, 0, 1, 100, len(WAV) - 44, len(WAV) - 10])),
)
upload = st.one_of(
    st.tuples(st.binary(max_size=200), CONTENT_TYPES),
    st.builds(lambda name, filename, data: (multipart("x", name, filename, data), "multipart/form-data; boundary=x"),
              st.sampled_from(["file", "file", "file", "other", 'fi"le', "\udc00"]),
              st.sampled_from(["a.wav", "", "../../x.flac", "a\udc00.ogg", "x" * 300, ".mp3"]), upload_data),
)


@settings(FUZZ, max_examples=60)
@given(body_and_type=upload)
def test_arbitrary_uploads_never_5xx(client, body_and_type):
    """Garbage, multipart with odd names, and a 0.2 s WAV with its header bytes changed or cut
    short (which may reach the ASR process)."""
    body, content_type = body_and_type
    headers = {} if content_type is None else {"content-type": content_type}
    assert_not_5xx(client.post("/v1/transcribe", content=body, headers=headers))


@settings(FUZZ, max_examples=100)
@given(range_header=st.one_of(
    st.from_regex(r"bytes=[0-9]{0,25}-[0-9]{0,25}", fullmatch=True),
    st.from_regex(r"bytes=[0-9]{0,3}-[0-9]{0,3}(,[0-9]{0,3}-[0-9]{0,3})?", fullmatch=True),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20).map(str.strip)),
    transcript_id=st.one_of(st.none(), st.text(st.characters(min_codepoint=33, max_codepoint=126).filter(
        lambda c: c not in "/?#%"), min_size=1, max_size=70)))
def test_audio_ranges_never_5xx(live_server, client, stored_audio, range_header, transcript_id):
    r = client.get(f"/v1/audio/{transcript_id or stored_audio}", headers={"range": range_header})
    assert_not_5xx(r)
    if r.status_code == 206:
        first, last, size = map(int, r.headers["content-range"].removeprefix("bytes ").replace("/", "-").split("-"))
        assert size == len(AUDIO) and r.content == AUDIO[first : last + 1]
    elif r.status_code == 200:
        assert r.content == AUDIO


AUDIO = bytes(range(256)) * 4


@pytest.fixture(scope="module")
def stored_audio(live_server):
    """An entry in the live server's transcript store (no ASR needed to serve its audio)."""
    from spokenqa.serve.store import StoredAudio

    return live_server.app.state.service.store.add(StoredAudio(None, AUDIO, "audio/wav", "x.wav"))


# --- 2. schemathesis against the OpenAPI schema -----------------------------------------------

SCHEMATHESIS_ARGS = ["--checks", "not_a_server_error", "--max-examples", "100", "--seed", "1", "--workers", "1"]


@pytest.mark.parametrize("server", ["live_server", "archive_server"])
def test_schemathesis_finds_no_server_errors(server, tmp_path, request):
    """`schemathesis run URL/openapi.json --checks not_a_server_error --max-examples 100 --seed 1
    --workers 1`: every operation, positive and negative data, no 5xx; on a plain server and on
    one with an archive (`serve --index`: searches and answers over it, its recordings)."""
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if exe is None:
        pytest.skip("schemathesis is not installed (pip install schemathesis)")
    cmd = [exe, "run", request.getfixturevalue(server).url + "/openapi.json", *SCHEMATHESIS_ARGS]
    proc = subprocess.run(cmd, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "Tested: 7" in out and " passed" in out, out[-3000:]


# --- 3. a burst of 200 concurrent requests ------------------------------------------------------


def test_burst_of_200_concurrent_answers(live_server):
    """200 requests at once (200 connections): each gets 200, or 503 back-pressure (the app's JSON
    503 with Retry-After past `max_pending` queued requests, or uvicorn's plain one past 256
    connections); nothing else, and the queue drains."""

    async def main():
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=live_server.url, timeout=60, limits=limits) as c:
            return await asyncio.gather(*[
                c.post("/v1/answer", json={"context": CONTEXT, "questions": [f"question {i}"], "top_k": 2})
                for i in range(200)
            ], return_exceptions=True)

    t0 = time.monotonic()
    rs = asyncio.run(main())
    seconds = time.monotonic() - t0
    errors = [r for r in rs if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    counts: dict[str, int] = {}
    for i, r in enumerate(rs):
        if r.status_code == 200:
            kind = "200"
            assert r.json()["results"][0]["question"] == f"question {i}"
        elif r.status_code == 503 and r.headers.get("content-type", "").startswith("application/json"):
            kind = "503 busy"
            assert "busy" in r.json()["error"] and r.headers["retry-after"] == "1"
        elif r.status_code == 503:
            kind = "503 uvicorn"
        else:
            raise AssertionError((r.status_code, r.text[:300]))
        counts[kind] = counts.get(kind, 0) + 1
    print(f"\nburst of 200: {counts} in {seconds:.1f} s")
    assert counts.get("200", 0) >= live_server.app.state.service.max_pending  # at least a queue's worth served
    health = httpx.get(live_server.url + "/health", timeout=10).json()
    assert health["pending"] == 0


# --- 4. slow and oversized clients --------------------------------------------------------------

BODY_SECONDS = 1.5


@pytest.fixture(scope="module")
def strict_server(tiny_checkpoint):
    """The app with a short body timeout (max_body_seconds=1.5), on its own loopback port."""
    from dataclasses import replace

    from spokenqa.serve.app import create_app
    from spokenqa.serve.server import BackgroundServer

    limits = replace(SERVE_LIMITS, max_body_seconds=BODY_SECONDS)
    with BackgroundServer(create_app(tiny_checkpoint, limits, engine="pocketsphinx")) as server:
        yield server


def raw_request(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(head)
    return s


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one response (Content-Length framed), then whether the server
    closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"closed without a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = s.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_by_server(s: socket.socket, within: float = 5.0) -> bool:
    s.settimeout(within)
    try:
        while True:
            if not s.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def trickle(s: socket.socket, every: float, stop: threading.Event) -> None:
    """Send one byte every `every` seconds until stopped or the server hangs up."""
    while not stop.wait(every):
        try:
            s.sendall(b" ")
        except OSError:
            return


@pytest.mark.parametrize("path,content_type,start", [
    ("/v1/answer", "application/json", b'{"context": "'),
    ("/v1/transcribe", "multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
], ids=["answer", "transcribe"])
def test_slow_body_gets_408_while_others_are_served(strict_server, path, content_type, start):
    """Headers at once, then the start of a body and one byte every 0.1 s."""
    head = (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
            "Content-Length: 5000\r\n\r\n").encode()
    s = raw_request(strict_server.port, head + start)
    stop = threading.Event()
    sender = threading.Thread(target=trickle, args=(s, 0.1, stop), daemon=True)
    t0 = time.monotonic()
    sender.start()
    try:
        health = []
        with httpx.Client(base_url=strict_server.url, timeout=5) as c:
            while time.monotonic() - t0 < BODY_SECONDS - 0.3:
                t = time.monotonic()
                assert c.get("/health").status_code == 200
                health.append(time.monotonic() - t)
                time.sleep(0.1)
        status, headers, body = read_response(s)
        took = time.monotonic() - t0
        assert status == 408, body
        assert headers["content-type"].startswith("application/json") and headers["connection"] == "close"
        assert "did not arrive within 1.5 s" in json.loads(body)["error"]
        assert BODY_SECONDS - 0.1 <= took < BODY_SECONDS + 3, took
        assert closed_by_server(s)
        # /health kept answering meanwhile: a loop blocked by the body would hold each call until
        # the 1.5 s timeout, so 1 s still tells the two apart on a loaded machine
        assert len(health) >= 3 and max(health) < 1.0, health
    finally:
        stop.set()
        s.close()


def test_slow_but_timely_body_is_served(strict_server):
    """The timeout bounds the whole body, not each read: a body in 6 pieces over ~0.6 s is fine."""
    body = json.dumps({"context": CONTEXT, "questions": ["who"]}).encode()
    s = raw_request(strict_server.port, (f"POST /v1/answer HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                                         f"\r\nContent-Length: {len(body)}\r\n\r\n").encode())
    try:
        step = len(body) // 6 + 1
        for i in range(0, len(body), step):
            time.sleep(0.1)
            s.sendall(body[i : i + step])
        status, _, out = read_response(s)
        assert status == 200, out
        assert json.loads(out)["results"][0]["question"] == "who"
        # the same keep-alive connection still works (the timeout is per request)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(s)[0] == 200
    finally:
        s.close()


@pytest.mark.parametrize("path,limit_key,content_type,start", [
    ("/v1/answer", "max_json_bytes", "application/json", b'{"context": "'),
    ("/v1/transcribe", "max_body_bytes", "multipart/form-data; boundary=x",
     b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
], ids=["answer", "transcribe"])
def test_chunked_oversized_body_gets_413(strict_server, path, limit_key, content_type, start):
    """Transfer-Encoding: chunked, no Content-Length, more than the limit: 413 as soon as the limit
    is passed (the rest is never read), then the connection is closed."""
    limit = getattr(SERVE_LIMITS, limit_key)
    s = raw_request(strict_server.port, (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n"
                                         "Transfer-Encoding: chunked\r\n\r\n").encode()
                    + b"%x\r\n%s\r\n" % (len(start), start))
    chunk = b"%x\r\n%s\r\n" % (8192, b"a" * 8192)
    sent = len(start)
    try:
        while sent <= limit + 8192:
            try:
                s.sendall(chunk)
            except OSError:  # the server may already have answered and hung up
                break
            sent += 8192
        status, headers, body = read_response(s)
        assert status == 413, body
        assert "too large" in json.loads(body)["error"] and headers["connection"] == "close"
        assert closed_by_server(s)
    finally:
        s.close()
    assert httpx.get(strict_server.url + "/health", timeout=10).status_code == 200


# --- 3. memory under 30 s of load (slow) ---------------------------------------------------------


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def load_text(words: int = 150) -> str:
    data = json.loads(SAMPLE.read_text())
    text = " ".join(p["context"] for a in data["data"] for p in a["paragraphs"])
    return " ".join(text.split()[:words])


RSS_GROWTH_MIB = 100


@pytest.mark.slow
def test_rss_stays_bounded_under_load(tiny_checkpoint):
    """`spokenqa serve` in a subprocess; its RSS (VmRSS) after a warm-up (16 clients, 3 s) and
    after 16 clients posting back to back for SPOKENQA_LOAD_SECONDS: growth < 100 MiB, no errors.
    The default of 6 s keeps the suite short; the documented run is 30 s:
    SPOKENQA_LOAD_SECONDS=30 pytest tests/test_serve_reliability.py -k rss -s"""
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc")
    seconds = float(os.environ.get("SPOKENQA_LOAD_SECONDS", "6"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "spokenqa", "serve", "--checkpoint", str(tiny_checkpoint),
                             "--port", "0", "--threads", "1", "--quiet", "--backend", "torch"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    try:
        line = serving_line(proc)
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        url = line.split(" at ")[1].split()[0].rstrip("/")
        body = {"context": load_text(), "questions": ["when was the harbor lighthouse built"], "top_k": 3}

        async def clients(n: int, duration: float) -> dict[str, int]:
            counts: dict[str, int] = {}
            limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
                deadline = time.monotonic() + duration

                async def one():
                    while time.monotonic() < deadline:
                        try:
                            key = str((await c.post("/v1/answer", json=body)).status_code)
                        except httpx.HTTPError as e:
                            key = type(e).__name__
                        counts[key] = counts.get(key, 0) + 1

                await asyncio.gather(*(one() for _ in range(n)))
            return counts

        for _ in range(100):
            try:
                if httpx.get(url + "/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        start = rss_mib(proc.pid)
        warm = asyncio.run(clients(16, 3))
        before = rss_mib(proc.pid)
        counts = asyncio.run(clients(16, seconds))
        after = rss_mib(proc.pid)
        print(f"\nRSS MiB: started {start:.1f}, after warm-up {before:.1f} ({warm}), "
              f"after 16 clients x {seconds:g} s {after:.1f} ({counts}); growth {after - before:+.1f}")
        assert set(warm) == {"200"} and set(counts) == {"200"}, (warm, counts)
        assert after - before < RSS_GROWTH_MIB
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
