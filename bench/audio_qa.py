"""End-to-end spoken QA from audio: recording -> ASR -> QA -> official SQuAD scores.

Input: a `spokenqa synthesize ... --keep-audio DIR` JSONL (one row per paragraph, with the
paragraph's SQuAD questions in `qas`) and its audio folder: one `AAA_PPP.wav` per paragraph
(article and paragraph index), or the paragraph's sentences as `AAA_PPP_*.wav` / `AAA_PPP/*.wav`,
which are concatenated in name order with nothing added between them (the timing the synth word
times refer to).

For each paragraph the recording is transcribed by each engine (pocketsphinx: segmented at
pauses; whisper: Whisper tiny.en, spokenized), every question of the paragraph is answered over
the transcript with `QA.answer(transcript=...)`, and the answers are scored with the official
SQuAD v1.1 metric against the gold answer text spokenized (`spokenize_answer`: numbers as words,
as a transcript says them) and against the original gold text. Rows without ASR:

- `text-spokenized`: the original paragraph spokenized (the upper bound: a perfect recogniser);
- `text-original`: the original paragraph as written (what a text reader sees);
- `sphinx-sentences`: the sentence-by-sentence pocketsphinx transcript stored in the JSONL (the
  Spoken-SQuAD recipe; its ASR time is the one recorded at synthesis).

Then one 60 s recording, cut from the first paragraph at least that long, is answered end to end
by `spokenqa ask --audio` in a fresh process (wall and CPU seconds of the child: interpreter
start, imports, ASR, model load, answer), and, for comparison, by the warm models in this process.

    nice -n 5 python bench/audio_qa.py /tmp/m10/out.jsonl [--audio-dir /tmp/m10/audio] \
        [--checkpoint runs/X/best] [--paragraphs N] [--engines pocketsphinx,whisper] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as C


def find_audio(audio_dir: Path, row: dict) -> list[Path]:
    """The paragraph's wav files, in speaking order."""
    stem = C.paragraph_stem(row)
    whole = audio_dir / f"{stem}.wav"
    if whole.is_file():
        return [whole]
    parts = sorted(audio_dir.glob(f"{stem}_*.wav")) or sorted((audio_dir / stem).glob("*.wav"))
    if not parts:
        raise SystemExit(f"{audio_dir}: no audio for paragraph {stem} ({stem}.wav, {stem}_*.wav or {stem}/*.wav)")
    return parts


def load_paragraph_audio(paths: list[Path]):
    import numpy as np

    from spokenqa.audio import asr

    pieces = [asr.load_audio(p, max_seconds=None)[0] for p in paths]
    return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]


def gold_examples(rows: list[dict], spoken: bool):
    """One Example per question; gold answers spokenized or as written."""
    from spokenqa.data import Answer, Example
    from spokenqa.spoken import spokenize_answer

    out = []
    for row in rows:
        for qa in row["qas"]:
            golds = []
            for a in qa["answers"]:
                text = spokenize_answer(a["text"]) if spoken else a["text"]
                golds.append(Answer(text or a["text"], int(a.get("answer_start", 0))))
            out.append(Example(qa["id"], row.get("title", ""), "", qa["question"], tuple(golds)))
    return out


def answer_all(qa, rows: list[dict], contexts: list) -> tuple[dict[str, str], float, float]:
    """Answer every question of each paragraph over its context (str or Transcript)."""
    predictions: dict[str, str] = {}
    clock = C.Clock()
    for row, ctx in zip(rows, contexts):
        questions = [q["question"] for q in row["qas"]]
        if not questions:
            continue
        if isinstance(ctx, str):
            if not ctx.strip():
                predictions.update({q["id"]: "" for q in row["qas"]})
                continue
            results = qa.answer(questions, context=ctx)
        else:
            if not ctx.text.strip():
                predictions.update({q["id"]: "" for q in row["qas"]})
                continue
            results = qa.answer(questions, transcript=ctx)
        for q, r in zip(row["qas"], results):
            predictions[q["id"]] = r.answers[0].text if r.answers else ""
    return predictions, clock.wall, clock.cpu


def score_row(name: str, rows, texts: list[str], predictions, asr_wall, asr_cpu, qa_wall, qa_cpu, gold_spoken,
              gold_original, note: str = "") -> dict:
    from spokenqa.corpus.synthesize import transcript_wer
    from spokenqa.metrics import official_scores

    spoken = official_scores(gold_spoken, predictions)
    original = official_scores(gold_original, predictions)
    wer = transcript_wer([{"context": r["context"], "transcript": t} for r, t in zip(rows, texts)])
    return {
        "engine": name,
        "wer": round(100 * wer, 1),
        "questions": spoken["questions"],
        "em_spoken_gold": round(spoken["exact_match"], 1),
        "f1_spoken_gold": round(spoken["f1"], 1),
        "em_original_gold": round(original["exact_match"], 1),
        "f1_original_gold": round(original["f1"], 1),
        "asr_s": None if asr_wall is None else round(asr_wall, 1),
        "asr_cpu_s": None if asr_cpu is None else round(asr_cpu, 1),
        "qa_s": round(qa_wall, 1),
        "qa_cpu_s": round(qa_cpu, 1),
        "note": note,
        "predictions": predictions,
    }


def time_ask(checkpoint: Path, clip: Path, question: str, engine: str) -> dict:
    """`spokenqa ask --audio` in a fresh process: wall and CPU seconds (user + sys of the child)."""
    exe = Path(sys.executable).with_name("spokenqa")
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", "spokenqa"]),
           "ask", "--checkpoint", str(checkpoint), "--audio", str(clip), "--engine", engine,
           "--question", question, "--json"]
    load0 = os.getloadavg()[0]
    child = C.Clock(children=True)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall, cpu = child.wall, child.cpu
    if proc.returncode != 0:
        raise SystemExit(f"ask failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    answer = out["results"][0]["answers"][0] if out["results"][0]["answers"] else {}
    return {
        "engine": engine,
        "command": " ".join(cmd),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "loadavg_1m_before": round(load0, 2),
        "loadavg_1m_after": round(os.getloadavg()[0], 2),
        "answer": answer.get("text"),
        "answer_s": [answer.get("start_s"), answer.get("end_s")],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("jsonl", type=Path)
    ap.add_argument("--audio-dir", type=Path, help="default: audio/ beside the JSONL")
    ap.add_argument("--checkpoint", type=Path, help="default: the newest runs/*/best with a spokenqa.json")
    ap.add_argument("--paragraphs", type=int, help="the first N paragraphs (by `order`); default all")
    ap.add_argument("--engines", default="pocketsphinx,whisper", help="ASR engines; whisper skipped when not installed")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads for the QA model here (default 1: on the shared 2-core machine, 2 threads "
                         "ran the same QA pass 6-12x slower); 0: torch's default. `spokenqa ask` keeps torch's")
    ap.add_argument("--clip-seconds", type=float, default=60.0)
    ap.add_argument("--ask-engines", default="pocketsphinx,whisper", help="engines for the fresh-process timing ('' skips it)")
    ap.add_argument("--ask-repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=C.OUT / "audio_qa.json")
    args = ap.parse_args()

    import soundfile as sf

    from spokenqa.audio import asr
    from spokenqa.qa import QA
    from spokenqa.spoken import spokenize

    checkpoint = C.checkpoint_for(args.checkpoint).resolve()
    audio_dir = args.audio_dir or args.jsonl.parent / "audio"
    rows = C.read_paragraphs(args.jsonl, args.paragraphs)
    audio_files = [find_audio(audio_dir, r) for r in rows]

    result: dict = {
        "jsonl": str(args.jsonl), "audio_dir": str(audio_dir), "checkpoint": str(checkpoint),
        "checkpoint_scores": json.loads((checkpoint / "spokenqa.json").read_text()).get("checkpoint", {}).get("scores"),
        "paragraphs": len(rows), "qa_threads": args.threads or "torch default", "machine": C.machine(), "busy_at_start": C.busy_processes(),
    }
    print(f"checkpoint {checkpoint}; {len(rows)} paragraphs from {args.jsonl}", file=sys.stderr)

    samples = [load_paragraph_audio(files) for files in audio_files]
    audio_s = [len(s) / asr.SAMPLE_RATE for s in samples]
    for row, secs in zip(rows, audio_s):
        if abs(secs - row["audio_s"]) > 0.05:
            print(f"warning: {C.paragraph_stem(row)}: audio {secs:.2f} s, "
                  f"JSONL says {row['audio_s']} s", file=sys.stderr)
    result["audio_s"] = round(sum(audio_s), 1)

    t0 = time.perf_counter()
    qa = QA.load(checkpoint, device="cpu", threads=args.threads or None)
    qa.answer("is it ready", context="the model is ready.")
    result["qa_load_s"] = round(time.perf_counter() - t0, 2)
    gold_spoken, gold_original = gold_examples(rows, True), gold_examples(rows, False)
    table = []

    def text_row(name, texts, note, asr_wall=None, asr_cpu=None):
        preds, qa_wall, qa_cpu = answer_all(qa, rows, texts)
        table.append(score_row(name, rows, texts, preds, asr_wall, asr_cpu, qa_wall, qa_cpu, gold_spoken,
                               gold_original, note))
        print(f"  {name}: done", file=sys.stderr)

    text_row("text-spokenized", [spokenize(r["context"]) for r in rows], "original text spokenized, no ASR (upper bound)")
    text_row("text-original", [r["context"] for r in rows], "original text as written, no ASR")
    text_row("sphinx-sentences", [r["transcript"] for r in rows],
             "pocketsphinx sentence by sentence, stored in the JSONL (ASR time: recorded at synthesis)",
             asr_wall=sum(r.get("asr_s", 0.0) for r in rows))

    transcripts: dict[str, list] = {}
    for engine in [e for e in args.engines.split(",") if e]:
        try:
            asr.warm_up(engine)
        except Exception as e:  # noqa: BLE001 - an engine that is not installed is skipped
            print(f"  {engine}: skipped ({e})", file=sys.stderr)
            result.setdefault("skipped", {})[engine] = str(e)
            continue
        clock = C.Clock()
        trs = [asr.transcribe(s, engine=engine, max_seconds=None) for s in samples]
        asr_wall, asr_cpu = clock.wall, clock.cpu
        transcripts[engine] = trs
        preds, qa_wall, qa_cpu = answer_all(qa, rows, trs)
        table.append(score_row(engine, rows, [t.text for t in trs], preds, asr_wall, asr_cpu, qa_wall, qa_cpu,
                               gold_spoken, gold_original,
                               "whole-paragraph recording" + (", segmented at pauses" if engine == "pocketsphinx" else "")))
        print(f"  {engine}: done ({asr_wall:.1f} s ASR)", file=sys.stderr)
    result["table"] = table
    result["loadavg_after_table"] = [round(x, 2) for x in os.getloadavg()]

    # One recording of clip_seconds, end to end.
    first = next((i for i, s in enumerate(audio_s) if s >= args.clip_seconds), None)
    ask_engines = [e for e in args.ask_engines.split(",") if e and e not in result.get("skipped", {})]
    if first is None:
        print(f"no paragraph lasts {args.clip_seconds:g} s: fresh-process timing skipped", file=sys.stderr)
    elif ask_engines:
        clip = samples[first][: int(args.clip_seconds * asr.SAMPLE_RATE)]
        question = rows[first]["qas"][0]["question"]
        with tempfile.TemporaryDirectory(prefix="audio-qa-") as tmp:
            path = Path(tmp) / f"clip_{args.clip_seconds:g}s.wav"
            sf.write(str(path), asr.to_int16(clip), asr.SAMPLE_RATE, subtype="PCM_16", format="WAV")
            timing: dict = {"clip_from": C.paragraph_stem(rows[first]),
                            "clip_s": round(len(clip) / asr.SAMPLE_RATE, 2), "question": question,
                            "fresh_process": [], "warm_in_process": []}
            for engine in ask_engines:
                for _ in range(args.ask_repeats):
                    timing["fresh_process"].append(time_ask(checkpoint, path, question, engine))
                    print(f"  ask {engine}: {timing['fresh_process'][-1]['wall_s']} s wall", file=sys.stderr)
                asr_clock = C.Clock()
                tr = asr.transcribe(path, engine=engine)
                asr_wall, asr_cpu = asr_clock.wall, asr_clock.cpu
                qa_clock = C.Clock()
                qa.answer(question, transcript=tr)
                timing["warm_in_process"].append({
                    "engine": engine,
                    "asr_wall_s": round(asr_wall, 2), "asr_cpu_s": round(asr_cpu, 2),
                    "qa_wall_s": round(qa_clock.wall, 2), "qa_cpu_s": round(qa_clock.cpu, 2),
                })
        result["clip"] = timing
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    C.write_json(args.out, result)
    print_table(result)
    print(f"\nwrote {args.out}")


def print_table(result: dict) -> None:
    m = result["machine"]
    print(f"\n{result['paragraphs']} paragraphs, {result['audio_s']} s of audio, "
          f"{result['table'][0]['questions'] if result['table'] else 0} questions; "
          f"checkpoint {result['checkpoint']}; {m.get('cpu', '?')} x{m.get('cpus')}, load {m.get('loadavg')}")
    head = ("engine", "WER %", "questions", "EM", "F1", "EM (orig gold)", "F1 (orig gold)", "ASR s", "RTF", "QA s")
    lines = [head]
    for r in result["table"]:
        rtf = None if r["asr_s"] is None else r["asr_s"] / result["audio_s"]
        lines.append((r["engine"], C.fmt(r["wer"]), str(r["questions"]), C.fmt(r["em_spoken_gold"]),
                      C.fmt(r["f1_spoken_gold"]), C.fmt(r["em_original_gold"]), C.fmt(r["f1_original_gold"]),
                      C.fmt(r["asr_s"]), C.fmt(rtf, 3), C.fmt(r["qa_s"])))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for line in lines:
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
    clip = result.get("clip")
    if clip:
        print(f"\n{clip['clip_s']} s recording ({clip['clip_from']}), `spokenqa ask --audio` in a fresh process:")
        for t in clip["fresh_process"]:
            print(f"  {t['engine']:<13} wall {t['wall_s']:6.2f} s  CPU {t['cpu_s']:6.2f} s  "
                  f"(load {t['loadavg_1m_before']} -> {t['loadavg_1m_after']})  answer {t['answer']!r}")
        for t in clip["warm_in_process"]:
            print(f"  warm, in process: {t['engine']:<13} ASR {t['asr_wall_s']} s ({t['asr_cpu_s']} CPU-s), "
                  f"QA {t['qa_wall_s']} s ({t['qa_cpu_s']} CPU-s)")


if __name__ == "__main__":
    main()
