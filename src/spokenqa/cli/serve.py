"""`spokenqa serve`: the HTTP API and web page (hooked into spokenqa.cli).

Same conventions as spokenqa.cli: `add_serve_parser(sub)` and `serve_command(args) -> int`;
library errors (SpokenQAError: not a checkpoint, port taken, FastAPI missing) propagate to
cli.main, which prints them on one line and exits with status 2.
"""

from __future__ import annotations

import argparse

from spokenqa.backends import add_backend_args
from spokenqa.cli.args import port, positive
from spokenqa.errors import ConfigError


def add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP API (/v1/answer, /v1/transcribe) and a web page for asking questions",
        description="Load a checkpoint once and serve the JSON API, its OpenAPI docs (/docs) and "
        "the web page (/) with uvicorn. See docs/SERVING.md.",
    )
    p.add_argument("--checkpoint", metavar="DIR",
                   help="a folder written by `spokenqa train` or `export` (default: the shipped model)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=port, default=8000, help="default 8000; 0: any free port")
    p.add_argument("--engine", default="pocketsphinx", choices=("pocketsphinx", "whisper"), help="ASR for uploads")
    p.add_argument("--threads", type=positive(int), metavar="N", help="CPU threads of the model, torch's or ONNX Runtime's (default: torch's)")
    p.add_argument("--device", metavar="DEV", help="cpu | cuda (default: cuda when present)")
    p.add_argument("--max-body-bytes", type=positive(int), metavar="N", help="audio upload limit (default 32 MiB)")
    p.add_argument("--max-audio-seconds", type=positive(float), metavar="S", help="default 600")
    p.add_argument("--max-questions", type=positive(int), metavar="N", help="per request (default 16)")
    p.add_argument("--max-context-chars", type=positive(int), metavar="N", help="default 20000")
    p.add_argument("--quiet", action="store_true", help="no access log")
    add_backend_args(p)
    p.set_defaults(func=serve_command)


def serve_command(args: argparse.Namespace) -> int:
    if args.checkpoint is not None:  # a wrong folder is told before seconds of imports and loading
        from spokenqa.checkpoint import checkpoint_config

        checkpoint_config(args.checkpoint)
    try:
        from spokenqa.serve.app import serve
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ConfigError(f"serving needs FastAPI and uvicorn ({e}): pip install fastapi uvicorn python-multipart") from None

    if args.device and args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"--device {args.device}: no CUDA device here (use --device cpu)")
    limits = {
        name: getattr(args, name)
        for name in ("max_body_bytes", "max_audio_seconds", "max_questions", "max_context_chars")
        if getattr(args, name) is not None
    }
    serve(
        args.checkpoint, args.host, args.port, access_log=not args.quiet, engine=args.engine,
        threads=args.threads, device=args.device, backend=args.backend, quantize=args.quantize, **limits,
    )
    return 0
