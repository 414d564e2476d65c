"""Audio subcommands: `synthesize`, `transcribe`, `speak` (hooked into spokenqa.cli).

Same conventions as the other command modules: one `add_<cmd>_parser(sub)` and one `<cmd>_command(args) -> int`
per subcommand; library errors (SpokenQAError) propagate to cli.main, which prints them on one
line and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from spokenqa.audio.asr import DEFAULT_ENGINE, ENGINE_CHOICES
from spokenqa.audio.tts import DEFAULT_VOICE
from spokenqa.cli.args import positive
from spokenqa.errors import ConfigError, notice


def add_synthesize_parser(sub) -> None:
    p = sub.add_parser(
        "synthesize",
        help="speak SQuAD paragraphs with Festival and transcribe them with pocketsphinx (resumable)",
        description=(
            "Spoken-SQuAD recipe: each paragraph split into sentences, each sentence spoken by "
            "Festival and decoded by pocketsphinx, transcripts joined with '. '. Writes one JSON "
            "line per paragraph (format of shared/data/synth); rerun the same command to resume."
        ),
    )
    p.add_argument("input", metavar="IN.json", help="SQuAD v1.1 JSON file")
    p.add_argument("output", metavar="OUT.jsonl", help="results, one JSON object per paragraph")
    _add_executor_args(p, "paragraphs")
    p.add_argument("--keep-audio", metavar="DIR", default=None,
                   help="keep each paragraph's audio as DIR/AAA_PPP.wav (16 kHz mono; on a Ray "
                        "cluster, a folder every node writes to)")
    p.add_argument("--max-paragraphs", type=positive(int), default=None, metavar="N",
                   help="only the first N paragraphs (in file order, or shuffled with --seed)")
    p.add_argument("--seed", type=int, default=None, metavar="N",
                   help="shuffle paragraphs with this seed first (42: the order of shared/data/synth)")
    p.add_argument("--voice", default=DEFAULT_VOICE, help="Festival voice")
    p.add_argument("--squad-json", metavar="OUT.json", default=None,
                   help="then convert all of OUT.jsonl to SQuAD JSON over the transcripts "
                        "(answers placed by spokenqa.corpus.align)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=synthesize_command)


def synthesize_command(args: argparse.Namespace) -> int:
    from spokenqa.corpus.synthesize import synthesize_squad

    stats = synthesize_squad(
        args.input,
        args.output,
        workers=args.workers,
        keep_audio_dir=args.keep_audio,
        max_paragraphs=args.max_paragraphs,
        seed=args.seed,
        voice=args.voice,
        progress=not args.no_progress,
        ray=args.ray,
        batch_size=args.batch_size,
    )
    print(stats.summary(), file=sys.stderr)
    if args.squad_json and stats.written + stats.skipped:
        from spokenqa.corpus.synthesize import write_squad

        astats = write_squad(args.output, args.squad_json)
        a = astats.to_dict()
        print(f"{args.squad_json}: {a.get('questions_kept')} of {a.get('questions')} questions "
              "kept after answer alignment", file=sys.stderr)
    if stats.failed:
        notice(f"{stats.failed} paragraph(s) failed; rerun to retry them")
        return 1
    return 0


def _add_executor_args(p: argparse.ArgumentParser, items: str) -> None:
    """Where the work runs: this machine's processes, or a Ray cluster (spokenqa.corpus.runner)."""
    p.add_argument("--workers", type=positive(int), default=None, metavar="N",
                   help="parallel worker processes (default 1; one per core is best); with --ray "
                        "auto and no RAY_ADDRESS: CPUs of the Ray started here (default: all)")
    p.add_argument("--ray", metavar="ADDRESS|auto", default=None,
                   help=f"run the {items} as Ray tasks on the cluster at ADDRESS (host:6379, "
                        "ray://host:10001); auto: $RAY_ADDRESS, else a Ray started here for the "
                        "run. Needs pip install 'spokenqa[ray]'")
    p.add_argument("--batch-size", type=positive(int), default=None, metavar="N",
                   help=f"{items} per Ray task (default: an even share per CPU / 4, at most 8)")


def add_engine_arg(p: argparse.ArgumentParser, what: str = "") -> None:
    """--engine: the same choices, default and help in every command that transcribes."""
    p.add_argument("--engine", choices=ENGINE_CHOICES, default=DEFAULT_ENGINE,
                   help=f"ASR engine{' ' + what if what else ''} (default {DEFAULT_ENGINE}: whisper "
                        "when it is installed, pip install 'spokenqa[whisper]', else pocketsphinx; "
                        "docs/AUDIO.md)")


def add_transcribe_parser(sub) -> None:
    p = sub.add_parser(
        "transcribe",
        help="transcribe sound files, with word times (many files: --out OUT.jsonl, resumable)",
        description=(
            "One FILE: prints its transcript (--json: as JSON). With --out: every recording "
            "named by the FILEs (files, folders, list files) becomes one JSON line in OUT.jsonl "
            "(file, text, duration, engine, words; an error line for a file that cannot be "
            "decoded); rerun the same command to resume."
        ),
    )
    p.add_argument("audio", metavar="FILE", nargs="+",
                   help="WAV (any rate/channels), FLAC, OGG or MP3 file; with --out also folders "
                        "(their audio files) and list files (.txt/.lst/.list, one path per line)")
    p.add_argument("--out", metavar="OUT.jsonl", default=None,
                   help="write one JSON line per recording here (skips those already there)")
    _add_executor_args(p, "recordings")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (with --out)")
    add_engine_arg(p)
    p.add_argument("--json", action="store_true", help="print the transcript as JSON")
    p.add_argument("--max-seconds", type=positive(float), default=None, metavar="S",
                   help="refuse audio longer than S seconds (default 600; with --out: no limit)")
    p.add_argument("--no-segment", action="store_true",
                   help="pocketsphinx: decode the whole file as one utterance")
    p.set_defaults(func=transcribe_command)


def transcribe_command(args: argparse.Namespace) -> int:
    from spokenqa.audio.asr import DEFAULT_MAX_SECONDS, transcribe

    if args.out is not None:
        return _transcribe_many(args)
    batch_only = [f for f, v in (("--ray", args.ray), ("--workers", args.workers),
                                 ("--batch-size", args.batch_size)) if v is not None]
    if len(args.audio) > 1 or batch_only:
        raise ConfigError(f"{' and '.join(batch_only) or 'several FILEs'}: give --out OUT.jsonl "
                          "(one JSON line per recording)")
    tr = transcribe(
        args.audio[0],
        engine=args.engine,
        max_seconds=args.max_seconds or DEFAULT_MAX_SECONDS,
        segment=not args.no_segment,
    )
    if args.json:
        json.dump(tr.to_dict(), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        return 0
    print(tr.text)
    for w in tr.words:
        print(f"{w.start_s:8.2f} {w.end_s:8.2f}  {w.text}")
    return 0


def _transcribe_many(args: argparse.Namespace) -> int:
    from spokenqa.corpus.transcribe import transcribe_files

    if args.json:
        raise ConfigError("--json prints one transcript; with --out every transcript is a JSON line")
    stats = transcribe_files(
        args.audio,
        args.out,
        engine=args.engine,
        max_seconds=args.max_seconds,
        segment=not args.no_segment,
        workers=args.workers,
        ray=args.ray,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    print(stats.summary(), file=sys.stderr)
    failed = stats.failed + stats.skipped_errors
    if failed:
        notice(f"{failed} recording(s) failed: see their error lines in {args.out} (delete "
               "them and rerun to try again)")
        return 1
    return 0


def add_speak_parser(sub) -> None:
    p = sub.add_parser("speak", help="speak text into a 16 kHz WAV with Festival")
    p.add_argument("text", metavar="TEXT", help="text to speak ('-' reads standard input)")
    p.add_argument("output", metavar="OUT.wav", help="WAV file to write (16 kHz mono)")
    p.add_argument("--voice", default=DEFAULT_VOICE, help="Festival voice")
    p.set_defaults(func=speak_command)


def speak_command(args: argparse.Namespace) -> int:
    from spokenqa.audio.tts import speak

    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise ConfigError("speak: no text given")
    duration = speak(text, args.output, args.voice)
    print(f"{args.output}: {duration:.2f} s", file=sys.stderr)
    return 0


__all__ = [
    "add_engine_arg",
    "add_speak_parser",
    "add_synthesize_parser",
    "add_transcribe_parser",
    "speak_command",
    "synthesize_command",
    "transcribe_command",
]
