"""Make Spoken-SQuAD style data for real: SQuAD paragraphs -> Festival speech -> pocketsphinx.

The recipe of the original Spoken-SQuAD and of shared/data/synth: each paragraph is split into
sentences, each sentence spoken by Festival (spokenqa.audio.tts) and decoded by pocketsphinx as one
utterance (spokenqa.audio.asr), the sentence transcripts joined with ". " and ended with ".", word times
kept over the paragraph's concatenated sentence audio.

Output: one JSON object per paragraph, appended to a JSONL file in the format of
``shared/data/synth/squad_train_festival_sphinx.jsonl`` (fields ``order, title, article_index,
paragraph_index, context, transcript, words, sentences, audio_s, tts_s, asr_s, qas``; ``qas`` are
the original questions, with offsets into ``context``, not into ``transcript``: the answer
aligner turns the file into SQuAD JSON). Each line is flushed and fsync'ed as it is written, so an
interrupted run loses at most the paragraphs in flight: run the same command again and it skips
the paragraphs already in the file.
"""

from __future__ import annotations

import io
import os
import random
import re
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokenqa.corpus.runner import Executor, Outcome, RunStats, drive, read_jsonl
from spokenqa.errors import AudioError, DataError
from spokenqa.files import atomic_write, atomic_write_json

FIELDS = (
    "order",
    "title",
    "article_index",
    "paragraph_index",
    "context",
    "transcript",
    "words",
    "sentences",
    "audio_s",
    "tts_s",
    "asr_s",
    "qas",
)

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?![a-z])")


def split_sentences(text: str) -> list[str]:
    """Split a paragraph where ., ! or ? is followed by white space and the next character is
    not a lower-case letter. This simple rule gives the sentence count of 1,001 of the 1,008
    paragraphs in shared/data/synth; it splits after abbreviations such as "U.S." before a
    capital, as the recipe did."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text.strip()) if s.strip()]


# --------------------------------------------------------------------------------------------
# Input selection


@dataclass(frozen=True)
class Task:
    order: int
    title: str
    article_index: int
    paragraph_index: int
    context: str
    qas: list[dict[str, Any]]


def load_tasks(
    in_json: str | os.PathLike[str], *, seed: int | None = None, max_paragraphs: int | None = None
) -> list[Task]:
    """Paragraphs of a SQuAD v1.1 JSON file in document order, or shuffled with
    ``random.Random(seed)`` (seed 42 gives the order of shared/data/synth), the first
    ``max_paragraphs`` of them."""
    from spokenqa.data import validate_squad
    from spokenqa.files import read_json

    path = Path(in_json)
    data = read_json(path)
    validate_squad(data, path, require_answers=False)
    keys: list[tuple[int, int]] = []
    for a, article in enumerate(data["data"]):
        for p in range(len(article["paragraphs"])):
            keys.append((a, p))
    if seed is not None:
        random.Random(seed).shuffle(keys)
    if max_paragraphs is not None:
        keys = keys[: max(0, max_paragraphs)]
    tasks = []
    for order, (a, p) in enumerate(keys):
        article = data["data"][a]
        para = article["paragraphs"][p]
        tasks.append(
            Task(order, str(article.get("title", "")), a, p, para["context"], para.get("qas", []))
        )
    return tasks


# --------------------------------------------------------------------------------------------
# Resumable JSONL output


def read_done(out_path: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """Rows already in ``out_path``, keyed by (article_index, paragraph_index). A last line cut
    short by an interruption is removed from the file; a bad line elsewhere is a DataError."""
    return read_jsonl(out_path, _row_key, "synthesize result")


def _row_key(row: dict[str, Any]) -> tuple[int, int]:
    return int(row["article_index"]), int(row["paragraph_index"])


# --------------------------------------------------------------------------------------------
# Worker


def _warm(cfg: Mapping[str, Any]) -> None:
    """Load pocketsphinx before the first paragraph, so its asr_s does not include the load."""
    from spokenqa.audio import asr

    asr.warm_up("pocketsphinx")


def process_paragraph(task: Task, voice: str, keep_audio_dir: str | None) -> dict[str, Any]:
    """TTS + ASR of one paragraph; returns the JSONL row (raises AudioError on failure)."""
    import numpy as np
    import soundfile as sf

    from spokenqa.audio import asr, tts

    sentences = split_sentences(task.context)
    utterances = []
    tts_s = 0.0
    with tempfile.TemporaryDirectory(prefix="spokenqa-synth-") as tmp:
        for i, sentence in enumerate(sentences):
            wav = Path(tmp) / f"s{i:03d}.wav"
            t0 = time.perf_counter()
            try:
                tts.speak(sentence, wav, voice)
            except AudioError as exc:
                if "nothing to speak" in str(exc):
                    continue
                raise
            tts_s += time.perf_counter() - t0
            samples, _ = asr.load_audio(wav, max_seconds=None)
            utterances.append(samples)
    t0 = time.perf_counter()
    transcript = asr.transcribe_utterances(utterances)
    asr_s = time.perf_counter() - t0
    if keep_audio_dir:
        out = Path(keep_audio_dir) / f"{task.article_index:03d}_{task.paragraph_index:03d}.wav"
        audio = np.concatenate(utterances) if utterances else np.zeros(0, np.float32)
        wav = io.BytesIO()
        sf.write(wav, asr.to_int16(audio), asr.SAMPLE_RATE, subtype="PCM_16", format="WAV")
        atomic_write(out, wav.getvalue())
    return {
        "order": task.order,
        "title": task.title,
        "article_index": task.article_index,
        "paragraph_index": task.paragraph_index,
        "context": task.context,
        "transcript": transcript.text,
        "words": transcript.word_triples(),
        "sentences": len(sentences),
        "audio_s": round(transcript.duration, 2),
        "tts_s": round(tts_s, 2),
        "asr_s": round(asr_s, 2),
        "qas": task.qas,
    }


def _work(task: Task, cfg: Mapping[str, Any]) -> dict[str, Any]:
    return process_paragraph(task, cfg["voice"], cfg["keep_audio_dir"])


# --------------------------------------------------------------------------------------------
# Driver


@dataclass
class SynthesizeStats(RunStats):
    tts_s: float = 0.0
    asr_s: float = 0.0

    def summary(self) -> str:
        n = max(1, self.written)
        per_core = (self.tts_s + self.asr_s) / n
        return (
            f"{self.written} paragraphs written, {self.skipped} already done, {self.failed} "
            f"failed, {self.retried} retried; {self.audio_s / 3600:.2f} h "
            f"audio; {self.wall_s:.1f} s wall with {self.ran_on or 'nothing to do'}; per "
            f"paragraph: tts {self.tts_s / n:.2f} s + asr {self.asr_s / n:.2f} s = "
            f"{per_core:.2f} s of one core"
        )


def synthesize_squad(
    in_json: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    workers: int | None = None,
    keep_audio_dir: str | os.PathLike[str] | None = None,
    *,
    max_paragraphs: int | None = None,
    seed: int | None = None,
    voice: str = "cmu_us_slt_arctic_hts",
    progress: bool = True,
    ray: str | None = None,
    batch_size: int | None = None,
) -> SynthesizeStats:
    """Speak and transcribe the paragraphs of ``in_json`` (SQuAD v1.1) into ``out_json`` (JSONL,
    one row per paragraph; see the module docstring). Resumable: paragraphs already in
    ``out_json`` are skipped. ``keep_audio_dir`` keeps each paragraph's audio as
    ``AAA_PPP.wav`` (article and paragraph index; 16 kHz mono 16-bit; the word times refer
    to it; on a Ray cluster it must be a folder every node writes to). ``workers``, ``ray`` and
    ``batch_size`` choose where paragraphs run (``spokenqa.corpus.runner.Executor``): locally, lines
    are in input order; on Ray, in completion order (the key is article_index/paragraph_index,
    and ``order`` gives the input order). Returns counts and timings; failed paragraphs are
    reported on stderr and left for a later run."""
    from spokenqa.audio import tts

    executor = Executor(workers=workers, ray=ray, batch_size=batch_size)
    executor.check()
    if not tts.available():
        raise AudioError(f"Festival (text2wave) or sox not found: {tts.SETUP_HINT}")
    out_path = Path(out_json)
    tasks = load_tasks(in_json, seed=seed, max_paragraphs=max_paragraphs)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    done = read_done(out_path)
    todo = []
    for t in tasks:
        row = done.get((t.article_index, t.paragraph_index))
        if row is None:
            todo.append(t)
        elif row.get("context") != t.context:
            raise DataError(
                f"{out_path}: paragraph {t.article_index}/{t.paragraph_index} was made from a "
                f"different input than {in_json}: use another output file"
            )
    keep = None
    if keep_audio_dir is not None:
        Path(keep_audio_dir).mkdir(parents=True, exist_ok=True)
        keep = str(Path(keep_audio_dir).resolve())  # workers may not share the driver's cwd
    stats = SynthesizeStats(selected=len(tasks), skipped=len(tasks) - len(todo))
    cfg = {"voice": voice, "keep_audio_dir": keep}

    def add(row: dict[str, Any]) -> None:
        stats.audio_s += row["audio_s"]
        stats.tts_s += row["tts_s"]
        stats.asr_s += row["asr_s"]

    def failure(outcome: Outcome) -> tuple[None, str]:  # no error line: a later run retries it
        task = outcome.item
        return None, f"paragraph {task.article_index}/{task.paragraph_index}: {outcome.error}"

    drive(executor, todo, _work, _warm, cfg, out_path, stats, on_row=add, on_failure=failure,
          unit="para", desc="synthesize", progress=progress)
    return stats


def write_squad(out_jsonl: str | os.PathLike[str], squad_json: str | os.PathLike[str]) -> Any:
    """Convert a synthesize JSONL into SQuAD JSON over the transcripts with the answer aligner
    (``spokenqa.corpus.align.convert_synth``); written atomically. Returns the aligner's stats."""
    from spokenqa.corpus.align import convert_synth, load_synth_jsonl

    records = sorted(load_synth_jsonl(out_jsonl), key=lambda r: r.get("order", 0))
    data, stats = convert_synth(records, source=str(out_jsonl))
    dest = Path(squad_json)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_json(dest, data, indent=None, ensure_ascii=False)
    except OSError as exc:
        raise DataError(f"{dest}: cannot write: {exc.strerror or exc}") from None
    return stats


# --------------------------------------------------------------------------------------------
# Evaluation helper


def transcript_wer(rows: Iterable[dict[str, Any]]) -> float:
    """Word error rate of ``transcript`` against ``context`` over result rows: the context is
    spokenized (``spokenqa.spoken.spokenize``: digits read as words, lower case), then both
    sides go through ``spokenqa.metrics.wer_text`` (punctuation and apostrophes dropped). This reads 23.4% on shared/data/synth (its README,
    with a slightly different normalisation: 23.8%)."""
    from spokenqa.metrics import word_error_rate
    from spokenqa.spoken import spokenize

    rows = list(rows)
    measured = word_error_rate([spokenize(row["context"]) for row in rows], [row["transcript"] for row in rows])
    return measured.wer if measured else 0.0


__all__ = [
    "FIELDS",
    "SynthesizeStats",
    "Task",
    "load_tasks",
    "process_paragraph",
    "read_done",
    "split_sentences",
    "synthesize_squad",
    "transcript_wer",
    "write_squad",
]
