"""Word error rate and speed of the ASR engines on Festival-spoken paragraphs.

Input: a synthesize JSONL and the folder given to its --keep-audio (one AAA_PPP.wav per
paragraph). For each of the first N paragraphs, the whole paragraph recording is transcribed by
each engine (pocketsphinx: segmented at pauses; whisper: Whisper tiny.en, spokenized) and
compared with the source text (spokenized, punctuation and apostrophes dropped; see
spokenqa.corpus.synthesize.transcript_wer). The sentence-by-sentence transcripts stored in the JSONL
(the synthesize recipe) are scored the same way. Also times pocketsphinx on the first 60 s of
the first recording, cold (model load included) and warm.

    python bench/asr_bench.py OUT.jsonl AUDIO_DIR [--paragraphs 5] [--engines pocketsphinx,whisper]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("audio_dir")
    ap.add_argument("--paragraphs", type=int, default=5)
    ap.add_argument("--engines", default="pocketsphinx,whisper")
    args = ap.parse_args()

    from spokenqa.audio import asr
    from spokenqa.corpus.synthesize import transcript_wer

    rows = C.read_paragraphs(Path(args.jsonl), args.paragraphs)
    wavs = [Path(args.audio_dir) / f"{C.paragraph_stem(r)}.wav" for r in rows]
    audio_s = sum(r["audio_s"] for r in rows)
    result: dict[str, object] = {"paragraphs": len(rows), "audio_s": round(audio_s, 1)}
    result["wer_sentence_by_sentence_pocketsphinx"] = round(transcript_wer(rows), 4)

    # 60 s recording, pocketsphinx, cold then warm.
    samples, _ = asr.load_audio(wavs[0])
    clip = samples[: 60 * asr.SAMPLE_RATE]
    t0 = time.perf_counter()
    asr.transcribe(clip)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    asr.transcribe(clip)
    warm = time.perf_counter() - t0
    result["pocketsphinx_60s_clip"] = {
        "clip_s": round(len(clip) / asr.SAMPLE_RATE, 1),
        "cold_s": round(cold, 2),
        "warm_s": round(warm, 2),
    }

    for engine in args.engines.split(","):
        asr.warm_up(engine)
        hyps = []
        t0 = time.perf_counter()
        for row, wav in zip(rows, wavs):
            tr = asr.transcribe(wav, engine=engine)
            hyps.append({"context": row["context"], "transcript": tr.text})
        elapsed = time.perf_counter() - t0
        result[f"wer_paragraph_{engine}"] = round(transcript_wer(hyps), 4)
        result[f"time_{engine}_s"] = round(elapsed, 1)
        result[f"rtf_{engine}"] = round(elapsed / audio_s, 3)
        result[f"example_{engine}"] = hyps[0]["transcript"][:200]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
