"""`spokenqa export`: a checkpoint in Hugging Face's *ForQuestionAnswering layout
(spokenqa.export) or as ONNX (spokenqa.backends.ort)."""

from __future__ import annotations

import argparse

from spokenqa.backends import QUANTIZE
from spokenqa.errors import ConfigError


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint in Hugging Face's *ForQuestionAnswering layout, or as ONNX")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint folder (`linear` head for --format hf)")
    p.add_argument("out", metavar="OUT", help="folder to write (replaced atomically)")
    p.add_argument("--format", default="hf", choices=("hf", "onnx"),
                   help="hf (default): safetensors for transformers and spokenqa; onnx: model.onnx (dynamic "
                   "batch and sequence) with the tokenizer files, for ONNX Runtime")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"),
                   help="--format hf: weight precision (default fp16: half the size of fp32)")
    p.add_argument("--quantize", choices=QUANTIZE,
                   help="--format onnx: dynamic int8 Linear layers (default: fp32)")
    p.add_argument("--max-answer-tokens", type=int, metavar="N",
                   help="--format hf: the answer-length cap stored with the model (default: the "
                   "checkpoint's); choose it on validation data with scripts/choose_decoding.py")
    p.set_defaults(func=export_command)


def _export_onnx(args: argparse.Namespace) -> int:
    flag = "--dtype" if args.dtype else "--max-answer-tokens" if args.max_answer_tokens is not None else None
    if flag:
        raise ConfigError(f"{flag} is for --format hf; --format onnx takes --quantize int8 (default fp32)")
    from spokenqa.backends.ort import export_onnx

    precision = args.quantize or "fp32"
    out = export_onnx(args.checkpoint, args.out, precision)
    size = (out / "model.onnx").stat().st_size / 1e6
    print(f"wrote {out} (ONNX {precision}, {size:.1f} MB): model.onnx runs in ONNX Runtime; "
          "spokenqa itself takes the checkpoint with --backend onnx")
    return 0


def _export_hf(args: argparse.Namespace) -> int:
    if args.quantize:
        raise ConfigError("--quantize is for --format onnx")
    from spokenqa.export import export_checkpoint

    dtype = args.dtype or "fp16"
    out = export_checkpoint(args.checkpoint, args.out, dtype, max_answer_tokens=args.max_answer_tokens)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {out} ({dtype} weights, {size:.1f} MB): loads with "
          f"AutoModelForQuestionAnswering.from_pretrained({str(out)!r}) and spokenqa --checkpoint")
    return 0


def export_command(args: argparse.Namespace) -> int:
    return _export_onnx(args) if args.format == "onnx" else _export_hf(args)


__all__ = ["add_export_parser", "export_command"]


def add_average_parser(sub) -> None:
    p = sub.add_parser("average", help="average the weights of checkpoints of one run (e.g. its snapshots/)")
    p.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT",
                   help="checkpoint folders of the same model and head (at least 2)")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write (replaced atomically)")
    p.set_defaults(func=average_command)


def average_command(args: argparse.Namespace) -> int:
    from spokenqa.checkpoint import average_checkpoints, check_checkpoint

    for folder in args.checkpoints:
        check_checkpoint(folder)
    out = average_checkpoints(args.checkpoints, args.out)
    print(f"wrote {out}: the mean of {len(args.checkpoints)} checkpoints' weights")
    return 0
