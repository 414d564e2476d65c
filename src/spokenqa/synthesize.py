"""Make Spoken-SQuAD style data for real: SQuAD paragraphs -> Festival speech -> pocketsphinx.

The recipe of the original Spoken-SQuAD and of shared/data/synth: each paragraph is split into
sentences, each sentence spoken by Festival (spokenqa.tts) and decoded by pocketsphinx as one
utterance (spokenqa.asr), the sentence transcripts joined with ". " and ended with ".", word times
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

import json
import multiprocessing as mp
import os
import random
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spokenqa.errors import AudioError, DataError

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
    path = Path(in_json)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise DataError(f"{path}: not SQuAD JSON (no top-level 'data' list)")
    keys: list[tuple[int, int]] = []
    for a, article in enumerate(data["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: data[{a}] has no 'paragraphs' list")
        for p, para in enumerate(paragraphs):
            if not isinstance(para, dict) or not isinstance(para.get("context"), str):
                raise DataError(f"{path}: data[{a}].paragraphs[{p}] has no 'context' string")
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
    done: dict[tuple[int, int], dict[str, Any]] = {}
    if not out_path.exists():
        return done
    good_end = 0
    with open(out_path, "rb") as fh:
        raw = fh.read()
    pos = 0
    lineno = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        end = len(raw) if nl < 0 else nl + 1
        line = raw[pos:end]
        lineno += 1
        try:
            row = json.loads(line)
            key = (int(row["article_index"]), int(row["paragraph_index"]))
            if nl < 0:
                raise ValueError("no newline")
        except (ValueError, KeyError, TypeError):
            if end == len(raw):  # torn last line: drop it
                break
            raise DataError(f"{out_path}:{lineno}: not a synthesize result line") from None
        done[key] = row
        good_end = end
        pos = end
    if good_end < len(raw):
        with open(out_path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return done


def _append(fh: Any, row: dict[str, Any]) -> None:
    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# --------------------------------------------------------------------------------------------
# Worker


_worker_cfg: dict[str, Any] = {}


def _init_worker(cfg: dict[str, Any], ignore_sigint: bool = False) -> None:
    if ignore_sigint:  # Ctrl-C reaches the whole process group: let the parent handle it
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker_cfg.clear()
    _worker_cfg.update(cfg)
    from spokenqa import asr

    asr.warm_up("pocketsphinx")


def process_paragraph(task: Task, voice: str, keep_audio_dir: str | None) -> dict[str, Any]:
    """TTS + ASR of one paragraph; returns the JSONL row (raises AudioError on failure)."""
    import numpy as np
    import soundfile as sf

    from spokenqa import asr, tts

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
        tmp_out = out.with_suffix(".wav.tmp")
        sf.write(str(tmp_out), asr.to_int16(audio), asr.SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(tmp_out, out)
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


def _work(task: Task) -> tuple[Task, dict[str, Any] | None, str | None]:
    try:
        row = process_paragraph(task, _worker_cfg["voice"], _worker_cfg["keep_audio_dir"])
        return task, row, None
    except AudioError as exc:
        return task, None, str(exc)


# --------------------------------------------------------------------------------------------
# Driver


@dataclass
class SynthesizeStats:
    selected: int = 0
    skipped: int = 0
    written: int = 0
    failed: int = 0
    audio_s: float = 0.0
    tts_s: float = 0.0
    asr_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 1

    def summary(self) -> str:
        n = max(1, self.written)
        per_core = (self.tts_s + self.asr_s) / n
        return (
            f"{self.written} paragraphs written, {self.skipped} already done, {self.failed} "
            f"failed; {self.audio_s / 3600:.2f} h audio; {self.wall_s:.1f} s wall with "
            f"{self.workers} worker(s); per paragraph: tts {self.tts_s / n:.2f} s + asr "
            f"{self.asr_s / n:.2f} s = {per_core:.2f} s of one core"
        )


def synthesize_squad(
    in_json: str | os.PathLike[str],
    out_json: str | os.PathLike[str],
    workers: int = 1,
    keep_audio_dir: str | os.PathLike[str] | None = None,
    *,
    max_paragraphs: int | None = None,
    seed: int | None = None,
    voice: str = "cmu_us_slt_arctic_hts",
    progress: bool = True,
) -> SynthesizeStats:
    """Speak and transcribe the paragraphs of ``in_json`` (SQuAD v1.1) into ``out_json`` (JSONL,
    one row per paragraph; see the module docstring). Resumable: paragraphs already in
    ``out_json`` are skipped. ``keep_audio_dir`` keeps each paragraph's audio as
    ``AAA_PPP.wav`` (article and paragraph index; 16 kHz mono 16-bit; the word times refer
    to it). Returns counts and timings; failed paragraphs are reported on stderr and left for a
    later run."""
    from spokenqa import tts

    if workers < 1:
        raise AudioError(f"--workers must be at least 1, got {workers}")
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
        keep = str(keep_audio_dir)
    stats = SynthesizeStats(selected=len(tasks), skipped=len(tasks) - len(todo), workers=workers)
    cfg = {"voice": voice, "keep_audio_dir": keep}
    start = time.perf_counter()
    bar = _progress(len(todo), progress)
    try:
        with open(out_path, "a", encoding="utf-8") as fh:
            for task, row, err in _run(todo, workers, cfg):
                if err is not None:
                    stats.failed += 1
                    msg = f"paragraph {task.article_index}/{task.paragraph_index}: {err}"
                    (bar.write(msg, file=sys.stderr) if bar else print(msg, file=sys.stderr))
                else:
                    assert row is not None
                    _append(fh, row)
                    stats.written += 1
                    stats.audio_s += row["audio_s"]
                    stats.tts_s += row["tts_s"]
                    stats.asr_s += row["asr_s"]
                if bar:
                    bar.update(1)
                    bar.set_postfix(audio_h=f"{stats.audio_s / 3600:.2f}", failed=stats.failed)
    finally:
        if bar:
            bar.close()
        stats.wall_s = time.perf_counter() - start
    return stats


def _progress(total: int, enabled: bool) -> Any:
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="para", desc="synthesize", dynamic_ncols=True, smoothing=0.1)


def _run(
    todo: list[Task], workers: int, cfg: dict[str, Any]
) -> Iterator[tuple[Task, dict[str, Any] | None, str | None]]:
    if not todo:
        return
    if workers == 1:
        _init_worker(cfg)
        for task in todo:
            yield _work(task)
        return
    # spawn: the parent may hold threads (tqdm, torch) that fork would copy in a bad state.
    # ProcessPoolExecutor (unlike multiprocessing.Pool) fails instead of hanging when a worker
    # dies. Results come back in input order, so the file's line order does not depend on
    # scheduling; at most 2 tasks per worker are in flight, so an interruption loses little.
    ctx = mp.get_context("spawn")
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(cfg, True))
    pending: deque[Future] = deque()
    tasks = iter(todo)
    try:
        for task in tasks:
            pending.append(pool.submit(_work, task))
            if len(pending) >= 2 * workers:
                break
        while pending:
            future = pending.popleft()
            try:
                result = future.result()
            except BrokenProcessPool:
                raise AudioError(
                    "a synthesize worker process stopped unexpectedly (killed, out of memory, or it "
                    "could not start); rerun to resume"
                ) from None
            nxt = next(tasks, None)
            if nxt is not None:
                pending.append(pool.submit(_work, nxt))
            yield result
    except BaseException:
        # Interrupted (Ctrl-C) or failed: stop the workers now rather than let them finish the
        # paragraphs they hold; those are redone on the next run.
        for future in pending:
            future.cancel()
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            proc.terminate()
        for proc in processes:
            proc.join(timeout=5)
        raise
    pool.shutdown(wait=True)


def write_squad(out_jsonl: str | os.PathLike[str], squad_json: str | os.PathLike[str]) -> Any:
    """Convert a synthesize JSONL into SQuAD JSON over the transcripts with the answer aligner
    (``spokenqa.align.convert_synth``); written atomically. Returns the aligner's stats."""
    from spokenqa.align import convert_synth, load_synth_jsonl

    records = sorted(load_synth_jsonl(out_jsonl), key=lambda r: r.get("order", 0))
    data, stats = convert_synth(records, source=str(out_jsonl))
    dest = Path(squad_json)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, ensure_ascii=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except OSError as exc:
        raise DataError(f"{dest}: cannot write: {exc.strerror or exc}") from None
    return stats


# --------------------------------------------------------------------------------------------
# Evaluation helper


def _wer_text(text: str) -> str:
    text = text.lower().replace("'", "")
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text).split())


def transcript_wer(rows: Iterable[dict[str, Any]]) -> float:
    """Word error rate of ``transcript`` against ``context`` over result rows: the context is
    spokenized (``spokenqa.spoken.spokenize``: digits read as words, lower case), then both
    sides lose punctuation and apostrophes. This reads 23.4% on shared/data/synth (its README,
    with a slightly different normalisation: 23.8%)."""
    import jiwer

    from spokenqa.spoken import spokenize

    refs, hyps = [], []
    for row in rows:
        ref = _wer_text(spokenize(row["context"]))
        if ref:
            refs.append(ref)
            hyps.append(_wer_text(row["transcript"]))
    if not refs:
        return 0.0
    return float(jiwer.wer(refs, hyps))


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
