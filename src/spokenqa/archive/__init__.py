"""Ask an archive: many transcripts and recordings in one index file, with passages, BM25 and dense
vectors, and hybrid retrieval (`spokenqa index ...`, `spokenqa search`; docs/ARCHIVE.md).

    from spokenqa.archive import index, retrieve, store

    index.build("archive.sqlite", ["talks/", "more.jsonl", "notes.txt", "squad.json"])
    with store.open_store("archive.sqlite") as s:
        for hit in retrieve.search(s, "when was the lighthouse built", k=5):
            print(hit.rank, hit.passage.path, hit.passage.start_s, hit.passage.text[:80])

The modules, bottom up:

- `passages`: a document's text cut into overlapping passages of about 120 words, at pauses or
  sentence ends, with character spans and times (pure functions).
- `store`: `Store`, the operations the index needs, and `SQLiteStore`, one SQLite file (WAL,
  FTS5, float16 vectors); `open_store` with one-line errors for what is not an index.
- `embed`: `Encoder`, the sentence encoder's mean-pooled, unit-length vectors (float16).
- `index`: `build`, `add`, `remove`, `stats`: inputs (audio, transcribe JSONL, text, SQuAD) in.
- `retrieve`: `search`, BM25, dense or hybrid, returning `Hit`s.

This layer imports the core, `audio` and `corpus` (transcribing recordings); `serve` and `cli`
import it; the core never does.
"""
