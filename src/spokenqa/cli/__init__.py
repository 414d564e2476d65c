"""Command line: `main` builds the parser from each command module's `add_<cmd>_parser` and runs
the chosen `<cmd>_command(args) -> int`. Each command parses, makes one library call and writes
its outputs. Bad input or usage (SpokenQAError) -> one line on stderr, exit status 2; internal
errors -> 1.

Modules: `train` (train), `evaluate` (evaluate, predict, stats), `ask`, `export`, `data` (the
`data` subcommands), `audio` (synthesize, transcribe, speak), `serve`; `common` holds what they
share (the built-in sample, output folders, atomic writes, choosing the checkpoint) and `args`
the argument types. Commands import torch inside their functions, after checking their inputs.
"""

from __future__ import annotations

import argparse
import os
import sys

from spokenqa import __version__
from spokenqa.cli.ask import add_ask_parser
from spokenqa.cli.audio import add_speak_parser, add_synthesize_parser, add_transcribe_parser
from spokenqa.cli.common import SAMPLE
from spokenqa.cli.data import add_data_parser
from spokenqa.cli.evaluate import add_evaluate_parser, add_predict_parser, add_stats_parser
from spokenqa.cli.export import add_average_parser, add_export_parser
from spokenqa.cli.index import add_index_parser, add_search_parser
from spokenqa.cli.serve import add_serve_parser
from spokenqa.cli.train import add_train_parser
from spokenqa.errors import SpokenQAError, notice

PARSERS = (
    add_train_parser,
    add_evaluate_parser,
    add_predict_parser,
    add_stats_parser,
    add_ask_parser,
    add_export_parser,
    add_average_parser,
    add_data_parser,
    add_synthesize_parser,
    add_transcribe_parser,
    add_speak_parser,
    add_serve_parser,
    add_index_parser,
    add_search_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spokenqa", description="Extractive question answering over spoken content.")
    parser.add_argument("--version", action="version", version=f"spokenqa {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSERS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # transformers reads this when a command first imports it (its warnings are not for users); set
    # here rather than by importing transformers, which alone takes a second before any input check
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported already (a notebook, tests): the variable is read
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except SpokenQAError as e:
        notice(f"error: {e}")
        return e.exit_status
    except KeyboardInterrupt:
        notice("interrupted")
        return 130
    except BrokenPipeError:  # `spokenqa ... | head`: the reader left; stop quietly like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if os.environ.get("SPOKENQA_DEBUG"):
            raise
        notice(f"internal error: {type(e).__name__}: {e} (set SPOKENQA_DEBUG=1 for a traceback)")
        return 1


__all__ = ["SAMPLE", "build_parser", "main"]
