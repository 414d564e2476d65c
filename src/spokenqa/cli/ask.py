"""`spokenqa ask`: questions over a transcript (text or file) or an audio file (spokenqa.qa).

Questions, context and checkpoint folder are checked, and audio transcribed, before the model
loads: bad input is a one-line error at once, not after seconds of loading.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spokenqa.audio.asr import ENGINES
from spokenqa.backends import add_backend_args
from spokenqa.cli.args import positive
from spokenqa.cli.common import CHECKPOINT_HELP, choose_checkpoint
from spokenqa.data import check_questions
from spokenqa.errors import ConfigError, notice


def add_ask_parser(sub) -> None:
    p = sub.add_parser("ask", help="answer questions over a transcript or an audio file")
    p.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    p.add_argument("--question", action="append", required=True, metavar="TEXT",
                   help="a question (repeat the flag to ask several over the same context)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--context", metavar="TEXT", help="the transcript to answer from, as text")
    source.add_argument("--context-file", metavar="FILE", help="the transcript to answer from, in a UTF-8 text file")
    source.add_argument("--audio", metavar="FILE", help="a sound file (wav at any rate); transcribed first")
    p.add_argument("--engine", default="pocketsphinx", choices=ENGINES,
                   help="ASR engine for --audio (default pocketsphinx)")
    p.add_argument("--top-k", type=positive(int), default=1, metavar="K",
                   help="answers per question, best first (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_args(p)
    p.set_defaults(func=ask_command)


def _text_context(args: argparse.Namespace) -> str | None:
    """--context or the text of --context-file (None for --audio); empty is bad input."""
    if args.context_file:
        try:
            context = Path(args.context_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{args.context_file}: cannot read the context file ({e})") from e
        if not context.strip():
            raise ConfigError(f"{args.context_file}: the context file is empty")
        return context
    if args.context is not None and not args.context.strip():
        raise ConfigError("--context: the context is empty")
    return args.context


def _transcribe(audio: str, engine: str):
    from spokenqa.audio.asr import transcribe
    from spokenqa.errors import AudioError

    transcript = transcribe(audio, engine=engine)
    if not transcript.text.strip():
        raise AudioError(f"{audio}: no speech recognised (the transcript is empty)")
    return transcript


def ask_command(args: argparse.Namespace) -> int:
    try:
        questions = check_questions(args.question)
    except ConfigError as e:
        raise ConfigError(f"--question: {e}") from None
    context = _text_context(args)
    folder, _ = choose_checkpoint(args.checkpoint)
    transcript = _transcribe(args.audio, args.engine) if args.audio else None
    from spokenqa.qa import QA

    qa = QA.load(folder, backend=args.backend, quantize=args.quantize)
    results = qa.answer(questions, context=context, transcript=transcript, top_k=args.top_k)
    if args.json:
        payload = {
            "context": transcript.text if transcript else context,
            "results": [{"question": r.question, "answers": [a.to_dict() for a in r.answers]} for r in results],
            **qa.runtime.to_dict(),
        }
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    notice(f"answered with {qa.runtime}")
    if transcript is not None:  # what the answers come from: a bad transcript explains bad answers
        shown = transcript.text if len(transcript.text) <= 300 else transcript.text[:300] + " ..."
        print(f"Transcript ({transcript.engine}): {shown}")
    for r in results:
        print(f"Q: {r.question}")
        for rank, a in enumerate(r.answers, 1):
            when = f"  [{a.start_s:.2f}s-{a.end_s:.2f}s]" if a.start_s is not None else ""
            print(f"  {rank}. {a.text}  (p={a.score:.3f}, chars {a.start}-{a.end}){when}")
        if not r.answers:
            print("  (no answer)")
    return 0


__all__ = ["add_ask_parser", "ask_command"]
