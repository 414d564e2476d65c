"""`spokenqa serve`: the HTTP API and web page (hooked into spokenqa.cli).

Same conventions as spokenqa.cli: `add_serve_parser(sub)` and `serve_command(args) -> int`;
library errors (SpokenQAError: not a checkpoint, port taken) propagate to cli.main, which prints
them on one line and exits with status 2. The limit flags fill a `spokenqa.serve.limits.Limits`;
the limits without a flag keep its defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spokenqa.backends import add_backend_args
from spokenqa.cli.args import port, positive
from spokenqa.cli.audio import add_engine_arg
from spokenqa.errors import ConfigError
from spokenqa.serve.limits import Limits, MiB


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP API (/v1/answer, /v1/transcribe, /v1/search) and a web page for asking questions",
        description="Load a checkpoint once and serve the JSON API, its OpenAPI docs (/docs) and "
        "the web page (/) with uvicorn. See docs/SERVING.md.",
    )
    p.add_argument("--checkpoint", metavar="DIR",
                   help="a folder written by `spokenqa train` or `export` (default: the shipped model)")
    p.add_argument("--index", metavar="INDEX",
                   help="also answer over this archive (a `spokenqa index build` file): /v1/search, "
                   "/v1/answer without a context, and the page's archive mode")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="with --index: answer only when the best answer's probability is at least P, else "
                   "\"not in this archive\" (default: the calibration's; a request's `threshold` overrides)")
    p.add_argument("--calibration", metavar="FILE",
                   help="with --index: the archive calibration (default: archive_calibration.json of the checkpoint)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="default 8000; 0: any free port")
    add_engine_arg(p, "for uploads")
    p.add_argument("--threads", type=positive(int), metavar="N", help="CPU threads of the model, torch's or ONNX Runtime's (default: torch's)")
    p.add_argument("--device", metavar="DEV", help="cpu | cuda (default: cuda when present)")
    p.add_argument("--max-body-bytes", type=positive(int), metavar="N", default=Limits.max_body_bytes,
                   help=f"audio upload limit (default {Limits.max_body_bytes // MiB} MiB)")
    p.add_argument("--max-audio-seconds", type=positive(float), metavar="S", default=Limits.max_audio_seconds,
                   help=f"length of one recording (default {Limits.max_audio_seconds:g})")
    p.add_argument("--max-questions", type=positive(int), metavar="N", default=Limits.max_questions,
                   help=f"per request (default {Limits.max_questions})")
    p.add_argument("--max-context-chars", type=positive(int), metavar="N", default=Limits.max_context_chars,
                   help=f"default {Limits.max_context_chars}")
    p.add_argument("--max-stored-audio-bytes", type=positive(int), metavar="N", default=Limits.max_stored_audio_bytes,
                   help="uploaded audio kept in memory for transcript_id, all recordings together "
                   f"(default {Limits.max_stored_audio_bytes // MiB} MiB)")
    p.add_argument("--quiet", action="store_true", help="no access log")
    add_backend_args(p)
    p.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:  # a wrong folder is told before seconds of imports and loading
        from spokenqa.checkpoint import checkpoint_config

        checkpoint_config(args.checkpoint)
    if args.index is None and (args.threshold is not None or args.calibration is not None):
        raise ConfigError("--threshold and --calibration apply to an archive: give --index INDEX too")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise ConfigError(f"--threshold must be in [0, 1], got {args.threshold}")
    if args.calibration is not None and not Path(args.calibration).is_file():
        raise ConfigError(f"{args.calibration}: no such calibration file")
    if args.index is not None:  # and so is what is not an index
        from spokenqa.archive.store import open_store

        open_store(args.index).close()
    from spokenqa.serve.server import serve

    if args.device and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {args.device}: no CUDA device here (use --device cpu)")
    limits = Limits(
        max_body_bytes=args.max_body_bytes, max_audio_seconds=args.max_audio_seconds,
        max_questions=args.max_questions, max_context_chars=args.max_context_chars,
        max_stored_audio_bytes=args.max_stored_audio_bytes,
    )
    serve(
        args.checkpoint, args.host, args.port, access_log=not args.quiet, limits=limits, engine=args.engine,
        threads=args.threads, device=args.device, backend=args.backend, quantize=args.quantize, index=args.index,
        calibration=args.calibration, threshold=args.threshold,
    )
    return 0
