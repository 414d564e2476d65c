"""`spokenqa ask`: questions over a transcript (text or file), an audio file (spokenqa.qa) or a
whole archive (`--index`, spokenqa.archive.read: documents, seconds, a calibrated probability,
or "not in this archive").

Questions, context, index and checkpoint folder are checked, and audio transcribed, before the
model loads: bad input is a one-line error at once, not after seconds of loading.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from spokenqa.backends import add_backend_args
from spokenqa.cli.args import positive
from spokenqa.cli.audio import add_engine_arg
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
    source.add_argument("--index", metavar="INDEX",
                        help="an archive made by `spokenqa index build`: the question is asked of all of it")
    add_engine_arg(p, "for --audio")
    p.add_argument("--top-k", type=positive(int), default=1, metavar="K",
                   help="answers per question, best first (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_archive_args(p)
    add_backend_args(p)
    p.set_defaults(func=ask_command)


def add_archive_args(p: argparse.ArgumentParser) -> None:
    """What `ask`, `evaluate` and `predict` take with --index."""
    from spokenqa.archive.retrieve import FUSIONS, MODES

    g = p.add_argument_group("with --index")
    g.add_argument("--passages", type=positive(int), default=5, metavar="N",
                   help="passages retrieved and read per question (default 5)")
    g.add_argument("--mode", choices=MODES, default="hybrid", help="retrieval (default hybrid)")
    g.add_argument("--fusion", choices=FUSIONS, default=None,
                   help="hybrid: rrf or score (default: the calibration's choice)")
    g.add_argument("--weight", type=float, default=None, metavar="W",
                   help="hybrid: the dense share in [0, 1] (default: the calibration's choice)")
    g.add_argument("--threshold", type=float, default=None, metavar="P",
                   help="answer only when the best answer's probability is at least P, else say "
                        "\"not in this archive\" (default: the calibration's, chosen on validation data)")
    g.add_argument("--calibration", metavar="FILE", default=None,
                   help="the archive calibration (default: archive_calibration.json of the checkpoint)")


def check_archive_args(args: argparse.Namespace) -> None:
    """The --index settings' ranges, and the index itself, before any model loads."""
    if args.weight is not None and not 0.0 <= args.weight <= 1.0:
        raise ConfigError(f"--weight must be in [0, 1], got {args.weight}")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.calibration is not None and not Path(args.calibration).is_file():
        raise ConfigError(f"{args.calibration}: no such calibration file")
    from spokenqa.archive.store import open_store

    open_store(args.index).close()  # missing, not SQLite, not an index: one line now


def open_archive(args: argparse.Namespace, folder: Path | None = None, cfg=None):
    """The ArchiveQA that --index, --checkpoint, the backend flags and --calibration describe
    (`folder`, `cfg`: the checkpoint and its settings, when already chosen)."""
    if folder is None:
        folder, _ = choose_checkpoint(args.checkpoint)
    from spokenqa.archive.read import ArchiveQA
    from spokenqa.qa import QA

    qa = QA.load(folder, backend=args.backend, quantize=args.quantize)
    if cfg is not None:  # decoding flags of evaluate/predict over the checkpoint's
        qa.cfg = cfg
    return ArchiveQA.open(args.index, qa, args.calibration)


def archive_answer_line(a) -> str:
    """`document [start-end s]: text (p=...)`, as `ask --index` prints an answer."""
    when = f" [{a.start_s:.1f}-{a.end_s:.1f} s]" if a.start_s is not None else ""
    return f"{a.document['path']}{when}: {a.text}  (p={a.probability:.3f})"


def ask_index_command(args: argparse.Namespace, questions: list[str]) -> int:
    check_archive_args(args)
    with open_archive(args) as archive:
        results = archive.ask(questions, passages=args.passages, top_k=args.top_k, mode=args.mode,
                              weight=args.weight, fusion=args.fusion, threshold=args.threshold)
        runtime = archive.qa.runtime
    if args.json:
        print(json.dumps({"index": args.index, "results": [r.to_dict() for r in results], **runtime.to_dict()},
                         ensure_ascii=False))
        return 0
    notice(f"answered with {runtime}")
    for r in results:
        print(f"Q: {r.question}")
        if r.abstained:
            best = f" (the best answer's p < {r.threshold:.3f})" if r.hits else " (no passage matches)"
            print(f"  not in this archive{best}")
        for rank, a in enumerate(r.answers, 1):
            print(f"  {rank}. {archive_answer_line(a)}")
    return 0


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
    if args.index is not None:
        return ask_index_command(args, questions)
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


__all__ = ["add_archive_args", "add_ask_parser", "archive_answer_line", "ask_command", "check_archive_args",
           "open_archive"]
