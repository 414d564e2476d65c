"""Word error rate and speed of each ASR engine on speech synthesized from known text, by voice.

This is the measurement behind the default engine (docs/AUDIO.md, "Which engine"). Texts: the
first `--sentences` sentences of `--texts` SQuAD paragraphs drawn with `--seed` (default: 30
texts of 2 sentences from shared/data/squad/train-v1.1.json; pass any SQuAD JSON). Each text is
spoken by two voices, Festival's cmu_us_slt_arctic_hts (`spokenqa.audio.tts.speak`, the voice of
the Spoken-SQuAD recipe) and espeak-ng's default English voice, and each recording transcribed
by each engine (`spokenqa.audio.asr.transcribe`, the whole recording as `spokenqa transcribe`
does it). WER: corpus WER of the transcripts against the text spokenized
(`spokenqa.spoken.spokenize`, digits read as words) through `spokenqa.metrics.word_error_rate`.
Speed: wall and CPU seconds of the transcribe calls over the seconds of audio (the real-time
factor), the engine's model loaded beforehand (its load time is reported apart).

    nice -n 10 python bench/asr_voices.py [SQUAD.json] [--texts 30] [--sentences 2] [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

VOICES = ("festival", "espeak-ng")


def pick_texts(squad_json: Path, count: int, sentences: int, seed: int) -> list[str]:
    """`count` texts: the first `sentences` sentences of paragraphs drawn at random (`seed`),
    as plain ASCII (what Festival reads; both voices get the same text)."""
    from spokenqa.audio.tts import festival_text
    from spokenqa.corpus.synthesize import split_sentences
    from spokenqa.files import read_json

    paragraphs = [p["context"] for a in read_json(squad_json)["data"] for p in a["paragraphs"]]
    rng = random.Random(seed)
    return [festival_text(" ".join(split_sentences(c)[:sentences])) for c in rng.sample(paragraphs, count)]


def speak(voice: str, text: str, wav: Path) -> float:
    """Speak `text` into `wav` with `voice`; its duration in seconds."""
    from spokenqa.audio.asr import load_audio
    from spokenqa.audio.tts import speak as festival

    if voice == "festival":
        return festival(text, wav)
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True, timeout=120)
    return load_audio(wav, max_seconds=None)[1]


def measure(engine: str, wavs: list[Path], texts: list[str], audio_s: float) -> dict:
    """WER, errors by kind, and seconds of `engine` on the recordings of one voice."""
    from spokenqa.audio import asr
    from spokenqa.metrics import word_error_rate
    from spokenqa.spoken import spokenize

    hyps = []
    clock = C.Clock()
    for wav in wavs:
        hyps.append(asr.transcribe(wav, engine=engine).text)
    wall, cpu = clock.wall, clock.cpu
    wer = word_error_rate([spokenize(t) for t in texts], hyps)
    return {
        "wer": round(wer.wer, 4),
        "substitutions": wer.substitutions,
        "deletions": wer.deletions,
        "insertions": wer.insertions,
        "reference_words": wer.hits + wer.substitutions + wer.deletions,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "rtf_wall": round(wall / audio_s, 3),
        "rtf_cpu": round(cpu / audio_s, 3),
        "example": {"text": texts[0], "transcript": hyps[0]},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("squad_json", nargs="?", default=str(C.squad_train()))
    ap.add_argument("--texts", type=int, default=30)
    ap.add_argument("--sentences", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--engines", default="pocketsphinx,whisper")
    ap.add_argument("--voices", default=",".join(VOICES))
    ap.add_argument("--out", help="also write the result here (JSON)")
    args = ap.parse_args()

    from spokenqa.audio import asr

    voices = args.voices.split(",")
    engines = args.engines.split(",")
    if "espeak-ng" in voices and shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not installed: run scripts/setup_debian.sh")
    texts = pick_texts(Path(args.squad_json), args.texts, args.sentences, args.seed)
    result: dict = {
        "command": " ".join(sys.argv),
        "machine": C.machine(),
        "busy_processes": C.busy_processes(),
        "texts": len(texts),
        "words": sum(len(t.split()) for t in texts),
    }
    loads = {}
    for engine in engines:
        t0 = time.perf_counter()
        asr.warm_up(engine)
        loads[engine] = round(time.perf_counter() - t0, 2)
    result["model_load_s"] = loads
    with tempfile.TemporaryDirectory(prefix="asr-voices-") as tmp:
        for voice in voices:
            wavs = [Path(tmp) / f"{voice}_{i:03d}.wav" for i in range(len(texts))]
            clock = C.Clock()
            audio_s = sum(speak(voice, t, w) for t, w in zip(texts, wavs))
            row = {"audio_s": round(audio_s, 1), "tts_wall_s": round(clock.wall, 1)}
            for engine in engines:
                row[engine] = measure(engine, wavs, texts, audio_s)
                print(f"{voice} {engine}: WER {row[engine]['wer']:.1%}, RTF {row[engine]['rtf_wall']}",
                      file=sys.stderr, flush=True)
            result[voice] = row
    result["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
