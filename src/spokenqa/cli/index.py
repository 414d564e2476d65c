"""`spokenqa index build|add|remove|stats` and `spokenqa search` (hooked into spokenqa.cli): an
archive of transcripts in one index file, and retrieval over it (spokenqa.archive,
docs/ARCHIVE.md).

Same conventions as the other command modules: `add_<cmd>_parser(sub)` and `<cmd>_command(args)
-> int`; library errors (SpokenQAError) reach cli.main, which prints one line and exits with 2.
The encoder (torch, transformers) is loaded inside the commands, after their inputs are checked.
"""

from __future__ import annotations

import argparse
import json
import sys

from spokenqa.archive.retrieve import DEFAULT_WEIGHT, FUSIONS, MODES
from spokenqa.backends import add_backend_args
from spokenqa.cli.args import positive
from spokenqa.cli.audio import _add_executor_args, add_engine_arg
from spokenqa.cli.common import CHECKPOINT_HELP
from spokenqa.errors import ConfigError, notice

INPUT_HELP = ("sound files, folders of them, list files (.lst/.list, or .txt of sound-file paths), "
              "`spokenqa transcribe --out` JSONL, .txt transcripts, SQuAD-format .json")


def add_index_parser(sub) -> None:
    p = sub.add_parser("index", help="an archive of transcripts in one index file (build, add, "
                                     "remove, stats); `spokenqa search` asks it",
                       description="An index of many transcripts and recordings in one SQLite file: "
                                   "passages, BM25 and dense vectors. See docs/ARCHIVE.md.")
    isub = p.add_subparsers(dest="index_command", metavar="SUBCOMMAND", required=True)
    for name, help_ in (("build", "make an index (or resume/extend one) from INPUTs"),
                        ("add", "add INPUTs to an existing index (unchanged ones are skipped)")):
        c = isub.add_parser(name, help=help_)
        c.add_argument("index", metavar="INDEX", help="the index file (e.g. archive.sqlite)")
        c.add_argument("inputs", metavar="INPUT", nargs="+", help=INPUT_HELP)
        if name == "build":
            c.add_argument("--encoder", metavar="MODEL", default=None,
                           help="sentence encoder of a new index: hub name or folder (default: "
                                "the shipped all-MiniLM-L6-v2)")
        add_engine_arg(c, "for sound files")
        c.add_argument("--threads", type=positive(int), default=None, metavar="N",
                       help="batches of passages the encoder runs at once, each on one CPU "
                            "thread (default: one per core this process may use)")
        _add_executor_args(c, "recordings")
        c.add_argument("--no-progress", action="store_true", help="no progress bar")
        c.set_defaults(func=index_add_command, create=name == "build")
    r = isub.add_parser("remove", help="drop documents (and their passages and vectors)")
    r.add_argument("index", metavar="INDEX", help="the index file")
    r.add_argument("paths", metavar="PATH", nargs="+",
                   help="a document's path (FILE#A/P for a SQuAD paragraph) or an input file it "
                        "was added from (all its documents)")
    r.set_defaults(func=index_remove_command)
    s = isub.add_parser("stats", help="documents, passages, hours of audio, file size, encoder")
    s.add_argument("index", metavar="INDEX", help="the index file")
    s.add_argument("--json", action="store_true", help="print them as JSON")
    s.set_defaults(func=index_stats_command)
    c = isub.add_parser("calibrate", help="fit the archive calibration of a reader on validation data "
                                          "(probabilities, threshold, retrieval mix)",
                        description="Fit the calibration `ask --index` uses, on a SQuAD-format validation "
                                    "file (never the test set): half its articles become an archive, asked "
                                    "their own questions and the other half's. See docs/ARCHIVE.md.")
    c.add_argument("--data", required=True, metavar="FILE", help="SQuAD-format validation file")
    c.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    c.add_argument("--out", metavar="FILE", default=None,
                   help="where to write the calibration (default: archive_calibration.json in the "
                        "checkpoint folder, where `ask --index` finds it)")
    c.add_argument("--work", metavar="DIR", default=None,
                   help="folder for the validation archive (kept: a rerun reuses it; default: a temporary one)")
    c.add_argument("--report", metavar="FILE", default=None, help="write the held-out report (JSON) here")
    c.add_argument("--figure", metavar="PNG", default=None, help="draw risk-coverage and reliability here")
    c.add_argument("--passages", type=positive(int), default=5, metavar="N", help="passages read per question (default 5)")
    c.add_argument("--answered", type=float, default=0.9, metavar="SHARE",
                   help="the threshold answers this share of answerable questions (default 0.9)")
    c.add_argument("--max-questions", type=positive(int), default=None, metavar="N",
                   help="at most N questions of each of the four parts (default: all)")
    c.add_argument("--threads", type=positive(int), default=None, metavar="N",
                   help="CPU threads of the reader (default: torch's; 1 is faster on a machine busy with other work)")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_backend_args(c)
    c.set_defaults(func=index_calibrate_command)


def index_add_command(args: argparse.Namespace) -> int:
    from spokenqa.archive import index

    stats = index.add(args.index, args.inputs, encoder=getattr(args, "encoder", None),
                      create=args.create, engine=args.engine, workers=args.workers, ray=args.ray,
                      batch_size=args.batch_size, progress=not args.no_progress,
                      threads=args.threads)
    print(stats.summary(), file=sys.stderr)
    if stats.failed:
        notice(f"{stats.failed} input(s) could not be indexed (undecodable audio, error lines): "
               f"see `spokenqa index stats {args.index}`")
        return 1
    return 0


def index_remove_command(args: argparse.Namespace) -> int:
    from spokenqa.archive import index

    removed = index.remove(args.index, args.paths)
    print(f"{args.index}: {removed} document(s) removed", file=sys.stderr)
    return 0


def index_stats_command(args: argparse.Namespace) -> int:
    from spokenqa.archive import index

    stats = index.stats(args.index)
    print(json.dumps(stats.to_dict(), indent=2) if args.json else stats.summary())
    return 0


def index_calibrate_command(args: argparse.Namespace) -> int:
    import contextlib
    import tempfile
    from pathlib import Path

    from spokenqa.archive.calibrate import FILENAME
    from spokenqa.cli.common import choose_checkpoint, write_json
    from spokenqa.data import validate_squad
    from spokenqa.files import read_json

    if not 0.0 < args.answered <= 1.0:
        raise ConfigError(f"--answered must be in (0, 1], got {args.answered}")
    validate_squad(read_json(args.data), args.data)
    folder, _ = choose_checkpoint(args.checkpoint)
    out = Path(args.out) if args.out else folder / FILENAME
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent}: no such folder for the calibration")
    from spokenqa.archive.validation import calibrate, plot
    from spokenqa.qa import QA

    qa = QA.load(folder, threads=args.threads, backend=args.backend, quantize=args.quantize)
    with (contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory()) as work:
        cal, report = calibrate(args.data, qa, work, passages=args.passages, answered=args.answered,
                                max_questions=args.max_questions, progress=not args.no_progress)
    cal.save(out)
    if args.report:
        write_json(Path(args.report), report, indent=None)
    if args.figure:
        plot(report, args.figure, f"held-out part of {Path(args.data).name}, reader {folder.name}, "
                                   f"{cal.fit['date'][:10]}")
    print(json.dumps({"calibration": str(out), **cal.fit["held_out"], "threshold": cal.threshold,
                      "fusion": cal.fusion, "weight": cal.weight}, indent=2))
    return 0


def add_search_parser(sub) -> None:
    p = sub.add_parser("search", help="the passages of an index that best match a question",
                       description="BM25 (FTS5), dense (sentence encoder) or hybrid retrieval over "
                                   "an index made by `spokenqa index build`. See docs/ARCHIVE.md.")
    p.add_argument("--index", required=True, metavar="INDEX", help="the index file")
    p.add_argument("--question", required=True, metavar="TEXT", help="the question")
    p.add_argument("--k", type=positive(int), default=5, metavar="N", help="passages to return (default 5)")
    p.add_argument("--mode", choices=MODES, default="hybrid", help="default hybrid")
    p.add_argument("--fusion", choices=FUSIONS, default="rrf",
                   help="hybrid: rrf (reciprocal-rank fusion, default) or score (normalised scores)")
    p.add_argument("--weight", type=float, default=DEFAULT_WEIGHT, metavar="W",
                   help=f"hybrid: the dense share in [0, 1] (default {DEFAULT_WEIGHT}: an even mix)")
    p.add_argument("--json", action="store_true", help="print the hits as JSON")
    p.set_defaults(func=search_command)


def search_command(args: argparse.Namespace) -> int:
    if not 0.0 <= args.weight <= 1.0:
        raise ConfigError(f"--weight must be in [0, 1], got {args.weight}")
    from spokenqa.archive.retrieve import search
    from spokenqa.archive.store import open_store

    with open_store(args.index) as store:
        hits = search(store, args.question, k=args.k, mode=args.mode, weight=args.weight,
                      fusion=args.fusion)
        empty = not hits and store.stats().passages == 0
    if empty:  # not "no match": there is nothing to match
        notice(f"{args.index}: the index holds no passages; add transcripts or recordings with "
               f"`spokenqa index add {args.index} INPUT...`")
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], indent=2, ensure_ascii=False))
        return 0
    if not hits and not empty:
        print("no passages match")
    for h in hits:
        p = h.passage
        when = f" {p.start_s:.1f}-{p.end_s:.1f} s" if p.start_s is not None else ""
        print(f"{h.rank}. {h.fused:.4f}  {p.path} [passage {p.ordinal}{when}]")
        print(f"   {p.text[:300]}{'...' if len(p.text) > 300 else ''}")
    return 0


__all__ = ["add_index_parser", "add_search_parser", "index_add_command", "index_calibrate_command", "index_remove_command",
           "index_stats_command", "search_command"]
