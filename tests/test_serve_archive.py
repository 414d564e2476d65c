"""`spokenqa serve --index`: the archive over HTTP against the real server (uvicorn on a loopback
port, the tiny untrained checkpoint and tiny encoder of conftest, a real SQLite index of the
sample's paragraphs and a transcribed recording): search, the recordings' audio by range, what
a server without an index says, bad input, and readers answering while `index add` writes."""

import json
import os
import signal
import subprocess
import sys

import pytest

httpx = pytest.importorskip("httpx")

from conftest import ROOT, SAMPLE, SERVE_LIMITS, serving_line

BRIDGE = ROOT / "tests" / "data" / "bridge_1932.wav"


@pytest.fixture(scope="module")
def client(archive_server):
    with httpx.Client(base_url=archive_server.url, timeout=60) as c:
        yield c


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert set(data) == {"error"} and isinstance(data["error"], str) and data["error"]
    assert "\n" not in data["error"]
    for w in words:
        assert w in data["error"], data["error"]
    return data["error"]


def search(client, **body):
    return client.post("/v1/search", json=body)


def squad_questions():
    data = json.loads(SAMPLE.read_text())
    return [(a, qa["question"]) for a, article in enumerate(data["data"])
            for qa in article["paragraphs"][0]["qas"][:2]]


# --- what the server has ----------------------------------------------------------------------


def test_health_and_archive_stats(client, archive_index):
    assert client.get("/health").json()["archive"] == str(archive_index)
    stats = client.get("/v1/archive").json()
    assert stats["path"] == str(archive_index) and stats["documents"] == 6
    assert stats["kinds"] == {"squad": 5, "audio": 1} and 2.6 < stats["audio_hours"] * 3600 < 2.7
    assert stats["passages"] >= stats["documents"] and stats["failures"] == 0
    assert stats["calibration"] is None and stats["threshold"] == 0.5  # the tiny reader has none
    spec = client.get("/openapi.json").json()
    assert {"/v1/search", "/v1/archive", "/v1/documents/{document_id}/audio"} <= set(spec["paths"])
    schema = spec["components"]["schemas"]["SearchRequest"]["properties"]
    assert schema["k"]["maximum"] == SERVE_LIMITS.max_search_k


def test_a_server_without_an_index_says_so(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        assert c.get("/health").json()["archive"] is None
        for r in (c.post("/v1/search", json={"question": "when was the bridge built"}),
                  c.get("/v1/archive"), c.get("/v1/documents/1/audio")):
            assert_error(r, 404, "no archive", "--index")


# --- search -----------------------------------------------------------------------------------


def test_search_bm25_finds_each_paragraph(client):
    for a, question in squad_questions():
        r = search(client, question=question, k=3, mode="bm25")
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["question"] == question and data["elapsed_ms"] > 0 and data["queued_ms"] >= 0
        hits = data["hits"]
        assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
        top = hits[0]
        assert top["document"]["path"] == f"{SAMPLE}#{a}/0", question
        assert top["document"]["name"] == f"{SAMPLE.name}#{a}/0" and top["document"]["audio_url"] is None
        assert top["scores"]["bm25"] == top["scores"]["fused"] > 0 and top["scores"]["dense"] is None
        assert top["passage"]["start_s"] is None  # a SQuAD paragraph has no times


def test_search_modes_and_fusions(client):
    for mode in ("hybrid", "dense"):
        for fusion in ("rrf", "score"):
            r = search(client, question="  how many eggs   does the queen lay ", k=4, mode=mode, fusion=fusion,
                       weight=0.3)
            assert r.status_code == 200, r.text
            data = r.json()
            assert data["question"] == "how many eggs does the queen lay"  # whitespace collapsed
            hits = data["hits"]
            assert len(hits) == 4 and [h["rank"] for h in hits] == [1, 2, 3, 4]
            fused = [h["scores"]["fused"] for h in hits]
            assert fused == sorted(fused, reverse=True)
            assert all(h["scores"]["dense"] is not None for h in hits)
    # the default (hybrid, k 5) and a question without words (no hits, not an error)
    assert len(search(client, question="the queen").json()["hits"]) == 5
    assert search(client, question="?!...").json()["hits"] == []


def test_search_finds_the_recording_with_its_times_and_audio(client):
    hits = search(client, question="when was the bridge built", k=2, mode="bm25").json()["hits"]
    top = hits[0]
    assert top["document"]["name"] == "bridge_1932.wav" and top["document"]["title"] == "bridge_1932"
    assert top["passage"]["text"] == "the bridge was built in nineteen thirty two."
    assert 0 <= top["passage"]["start_s"] < top["passage"]["end_s"] <= 2.7
    url = top["document"]["audio_url"]
    assert url == f"/v1/documents/{top['document']['id']}/audio"

    audio = BRIDGE.read_bytes()
    whole = client.get(url)
    assert whole.status_code == 200 and whole.content == audio
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == audio[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(audio)}"
    assert client.get(url, headers={"Range": "bytes=-10"}).content == audio[-10:]
    assert client.get(url, headers={"Range": f"bytes={len(audio) - 5}-"}).content == audio[-5:]
    assert client.get(url, headers={"Range": "bytes=0-1,5-9"}).content == audio  # several: all of it
    assert client.get(url, headers={"Range": "items=0-1"}).content == audio  # malformed: ignored
    r = client.get(url, headers={"Range": f"bytes={len(audio)}-"})
    assert_error(r, 416, "outside")
    assert r.headers["content-range"] == f"bytes */{len(audio)}"


def test_audio_only_of_the_index_recordings(client):
    squad = search(client, question="who built the lighthouse", k=1, mode="bm25").json()["hits"][0]["document"]
    assert_error(client.get(f"/v1/documents/{squad['id']}/audio"), 404, "no recording")  # not audio
    assert_error(client.get("/v1/documents/987654/audio"), 404, "no recording")  # not in the index
    assert_error(client.get("/v1/documents/x/audio"), 422, "document_id")
    assert_error(client.get(f"/v1/documents/{2**63}/audio"), 422, "document_id")  # not a SQLite id
    assert_error(client.get("/v1/documents/0/audio"), 422, "document_id")
    for path in ("/v1/documents/..%2f..%2fetc%2fpasswd/audio", "/v1/documents/1/../../../etc/passwd"):
        assert client.get(path).status_code in (404, 422)


def test_a_document_removed_meanwhile_is_named_without_audio():
    from spokenqa.serve.archive import gone

    squad = gone({"id": 9, "path": "/data/s.json#0/3", "title": "bees"})
    assert (squad.name, squad.title, squad.audio_url) == ("s.json#0/3", "bees", None)
    talk = gone({"id": 4, "path": str(BRIDGE), "title": "bridge_1932"})  # a recording that still exists
    assert (talk.name, talk.audio_url) == ("bridge_1932.wav", None)


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({"question": "bees", "mode": "sparse"}, 422, ("mode", "'hybrid', 'bm25' or 'dense'")),
        ({"question": "bees", "fusion": "max"}, 422, ("fusion",)),
        ({"question": "bees", "k": 0}, 422, ("k", "greater than or equal to 1")),
        ({"question": "bees", "k": SERVE_LIMITS.max_search_k + 1}, 422, ("k", f"less than or equal to {SERVE_LIMITS.max_search_k}")),
        ({"question": "bees", "k": "five"}, 422, ("k",)),
        ({"question": "bees", "weight": 1.5}, 422, ("weight",)),
        ({"question": "why " * 200}, 422, ("question", f"at most {SERVE_LIMITS.max_question_chars}")),
        ({"question": "   "}, 422, ("question", "empty")),
        ({"questions": ["bees"]}, 422, ("question", "required")),
        ({"question": "bees", "context": "x"}, 422, ("context", "not permitted")),
        ({"question": 7}, 422, ("question",)),
    ],
)
def test_bad_search_requests_get_json_4xx(client, body, status, words):
    assert_error(search(client, **body), status, *words)


def test_bad_search_bodies(client):
    assert_error(client.post("/v1/search", content=b'{"question": ', headers={"content-type": "application/json"}),
                 400, "not valid JSON")
    big = json.dumps({"question": "a " * SERVE_LIMITS.max_json_bytes}).encode()
    assert_error(client.post("/v1/search", content=big, headers={"content-type": "application/json"}),
                 413, "too large")
    assert_error(client.get("/v1/search"), 405, "GET", "POST")


# --- answers over the archive ---------------------------------------------------------------


def answer(client, **body):
    return client.post("/v1/answer", json=body)


def test_answers_over_the_archive_are_the_readers(client, archive_server):
    """No context: the archive. Each answer is a span of its passage with its document, and the
    response holds exactly what ArchiveQA.ask gives in-process."""
    questions = ["when was the bridge built", "who built the lighthouse"]
    r = answer(client, questions=questions, top_k=3, passages=4, threshold=0.0)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["index"] == client.get("/health").json()["archive"] and data["elapsed_ms"] > 0
    expected = archive_server.app.state.service.archive.reader.ask(questions, passages=4, top_k=3, threshold=0.0)
    for result, want in zip(data["results"], expected, strict=True):
        assert result["question"] == want.question and result["threshold"] == 0.0
        assert result["abstained"] is False and 1 <= len(result["answers"]) <= 3
        assert [(a["text"], a["document"]["id"], a["passage"]["id"]) for a in result["answers"]] == \
            [(a.text, a.document["id"], a.passage["id"]) for a in want.answers]
        probabilities = [a["probability"] for a in result["answers"]]
        assert probabilities == sorted(probabilities, reverse=True) and all(0 <= p <= 1 for p in probabilities)
        for a in result["answers"]:
            passage, document = a["passage"], a["document"]
            assert a["text"] == passage["text"][a["start"]:a["end"]] and a["text"]
            if passage["start_s"] is None:
                assert a["start_s"] is None and document["audio_url"] is None
            else:  # a recording: the answer's seconds lie in its passage's
                assert passage["start_s"] - 0.01 <= a["start_s"] <= a["end_s"] <= passage["end_s"] + 0.01
                assert document["audio_url"] == f"/v1/documents/{document['id']}/audio"


def test_not_in_this_archive(client):
    """Abstained exactly when the best answer's probability is below the threshold: the
    server's (GET /v1/archive) by default, or the request's."""
    question = ["how many eggs does the queen lay"]
    best = answer(client, questions=question, threshold=0.0).json()["results"][0]["answers"][0]["probability"]
    refused = answer(client, questions=question, threshold=1.0).json()["results"][0]
    assert refused["abstained"] is (best < 1.0) and best < 1.0  # an untrained reader is never sure
    assert refused["answers"] == [] and refused["threshold"] == 1.0
    default = answer(client, questions=question).json()["results"][0]
    threshold = client.get("/v1/archive").json()["threshold"]
    assert default["threshold"] == threshold and default["abstained"] is (best < threshold)
    nothing = answer(client, questions=["?!"], threshold=0.0).json()["results"][0]  # no words: no passage
    assert nothing["abstained"] is True and nothing["answers"] == []


def test_the_context_endpoints_keep_working_with_an_index(client):
    r = answer(client, context="the bridge was built in nineteen thirty two.", questions=["when"], top_k=2)
    assert r.status_code == 200, r.text
    assert r.json()["transcript_id"] is None and len(r.json()["results"][0]["answers"]) == 2


@pytest.mark.parametrize(
    "body, words",
    [
        ({"questions": ["bees"], "passages": 0}, ("passages", "greater than or equal to 1")),
        ({"questions": ["bees"], "passages": SERVE_LIMITS.max_passages + 1}, ("passages", "less than or equal")),
        ({"questions": ["bees"], "mode": "sparse"}, ("mode",)),
        ({"questions": ["bees"], "threshold": 1.5}, ("threshold", "less than or equal to 1")),
        ({"questions": ["bees"], "weight": -1}, ("weight",)),
        ({"questions": ["bees"], "context": "x y", "passages": 3}, ("passages", "only over the archive")),
        ({"questions": ["bees"], "context": "x y", "transcript_id": "abc"}, ("not both", "archive")),
        ({"questions": ["why " * 200]}, ("questions[0]", f"at most {SERVE_LIMITS.max_question_chars}")),
        ({"questions": ["bees"] * (SERVE_LIMITS.max_questions + 1)}, ("questions", f"at most {SERVE_LIMITS.max_questions}")),
        ({"questions": ["  "]}, ("question 1 is empty",)),
    ],
)
def test_bad_archive_answer_requests(client, body, words):
    assert_error(answer(client, **body), 422, *words)


def test_no_context_on_a_server_without_an_index(live_server):
    with httpx.Client(base_url=live_server.url, timeout=30) as c:
        assert_error(c.post("/v1/answer", json={"questions": ["who"]}), 422, "exactly one of", "no archive", "--index")
        assert_error(c.post("/v1/answer", json={"questions": ["who"], "context": "a b", "passages": 2}), 422,
                     "passages", "only over the archive")


def test_an_empty_archive_is_not_an_error(tiny_checkpoint, tiny_model_dir, tmp_path):
    """An index with no documents yet: the server starts, finds nothing, and every question is
    not in this archive."""
    from conftest import SERVE_LIMITS as limits

    from spokenqa.archive.store import open_store
    from spokenqa.serve.app import create_app
    from spokenqa.serve.server import BackgroundServer

    path = tmp_path / "empty.sqlite"
    open_store(path, create=True, encoder=str(tiny_model_dir), encoder_dim=32).close()
    with BackgroundServer(create_app(tiny_checkpoint, limits, index=path)) as server, \
            httpx.Client(base_url=server.url, timeout=60) as c:
        assert c.get("/v1/archive").json()["documents"] == 0
        assert search(c, question="when was the bridge built").json()["hits"] == []
        result = answer(c, questions=["when was the bridge built"], threshold=0.0).json()["results"][0]
        assert result["abstained"] is True and result["answers"] == []


# --- a writer while the server reads --------------------------------------------------------


def test_readers_keep_answering_while_the_index_is_written(client, archive_index, tmp_path):
    """WAL: a search is answered while another process-like writer holds the write lock, and
    sees what `index add` committed (the new passage and its vector) on the next question."""
    from spokenqa.archive import index
    from spokenqa.archive.store import open_store

    before = client.get("/v1/archive").json()
    note = tmp_path / "zeppelin.txt"
    note.write_text("the zeppelin hangar at lakehurst was built in nineteen twenty one.")
    with open_store(archive_index, write=True) as writer, writer.transaction() as c:
        c.execute("DELETE FROM failures")  # holds the write lock until the block ends
        r = search(client, question="who built the lighthouse", k=1)
        assert r.status_code == 200 and r.json()["hits"]
    try:
        index.add(archive_index, [note])
        for mode in ("bm25", "hybrid"):
            hits = search(client, question="zeppelin hangar", k=1, mode=mode).json()["hits"]
            assert hits[0]["document"]["name"] == "zeppelin.txt", mode
        after = client.get("/v1/archive").json()
        assert after["documents"] == before["documents"] + 1 and after["generation"] > before["generation"]
    finally:
        index.remove(archive_index, [str(note)])
    assert search(client, question="zeppelin", k=1, mode="bm25").json()["hits"] == []
    assert client.get("/v1/archive").json()["documents"] == before["documents"]


def test_cli_serve_index_errors_are_one_line(tmp_path, capsys):
    from spokenqa.cli import main

    assert main(["serve", "--index", str(tmp_path / "none.sqlite"), "--port", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such index" in err[0]
    (tmp_path / "text.sqlite").write_text("not a database")
    assert main(["serve", "--index", str(tmp_path / "text.sqlite"), "--port", "0"]) == 2
    assert "not a SQLite database" in capsys.readouterr().err
    for argv, message in ((["--threshold", "0.5"], "give --index INDEX too"),
                          (["--index", "x.sqlite", "--threshold", "1.5"], "--threshold must be in [0, 1]"),
                          (["--index", "x.sqlite", "--calibration", str(tmp_path / "c.json")], "no such calibration")):
        assert main(["serve", "--port", "0", *argv]) == 2
        assert message in capsys.readouterr().err


@pytest.mark.slow
def test_cli_serve_index_runs_a_server(tiny_checkpoint, archive_index):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "spokenqa", "serve", "--checkpoint", str(tiny_checkpoint), "--index", str(archive_index),
         "--threshold", "0.25", "--port", "0", "--threads", "1", "--quiet", "--backend", "torch"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=ROOT,
    )
    try:
        line = serving_line(proc)
        assert f"over the archive {archive_index} at " in line, line
        url = line.split(" at ")[-1].split()[0].rstrip("/")
        with httpx.Client(base_url=url, timeout=30) as c:
            stats = c.get("/v1/archive").json()
            assert stats["threshold"] == 0.25 and stats["documents"] == 6
            r = c.post("/v1/answer", json={"questions": ["who built the lighthouse"]})
            assert r.status_code == 200 and r.json()["results"][0]["threshold"] == 0.25
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
