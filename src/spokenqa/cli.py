"""Command line: one `add_<cmd>_parser` + one `<cmd>_command` per subcommand, each body one
library call. Bad input or usage -> one line on stderr, exit status 2; internal errors -> 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from spokenqa.errors import ConfigError, SpokenQAError

def positive(kind: type) -> Any:
    """argparse `type=` for numbers that must be > 0 (counts, limits, seconds)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value

    return parse


SAMPLE = Path(__file__).parent / "sample" / "sample_spoken.json"  # 27 questions, written for demos

# Flag -> config field for every setting a user may override on `train`.
OVERRIDES: dict[str, tuple[str, type]] = {
    "--model": ("model", str),
    "--epochs": ("epochs", int),
    "--max-steps": ("max_steps", int),
    "--max-train-examples": ("max_train_examples", int),
    "--max-eval-examples": ("max_eval_examples", int),
    "--max-length": ("max_length", int),
    "--doc-stride": ("doc_stride", int),
    "--max-question-tokens": ("max_question_tokens", int),
    "--negative-window-keep": ("negative_window_keep", float),
    "--head": ("head", str),
    "--loss": ("loss", str),
    "--focal-gamma": ("focal_gamma", float),
    "--batch-size": ("train_batch_size", int),
    "--eval-batch-size": ("eval_batch_size", int),
    "--lr": ("learning_rate", float),
    "--weight-decay": ("weight_decay", float),
    "--warmup-ratio": ("warmup_ratio", float),
    "--max-grad-norm": ("max_grad_norm", float),
    "--seed": ("seed", int),
    "--mixed-precision": ("mixed_precision", str),
    "--decoder": ("decoder", str),
    "--n-best": ("n_best", int),
    "--max-answer-tokens": ("max_answer_tokens", int),
    "--select-metric": ("select_metric", str),
    "--checkpoint-every": ("checkpoint_every", int),
    "--eval-every": ("eval_every", int),
    "--threads": ("num_threads", int),
}
SWITCHES = {  # flag -> (field, value when given)
    "--baseline": ("baseline", True),
    "--skip-nonfinite": ("skip_nonfinite", True),
    "--expand-answers": ("expand_answers", True),
    "--no-lowercase": ("lowercase", False),
    "--no-group-by-length": ("group_by_length", False),
}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a span-QA model and evaluate it each epoch")
    p.add_argument("--preset", default="cpu", help="reference | cpu (default)")
    p.add_argument("--train", action="append", default=[], metavar="FILE", help="SQuAD-format training file (repeatable; default: the built-in sample)")
    p.add_argument("--eval", metavar="FILE", help="SQuAD-format evaluation file, scored after each epoch")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    for flag, (name, kind) in OVERRIDES.items():
        p.add_argument(flag, type=kind, dest=name, default=None, help=f"override `{name}`")
    for flag, (name, value) in SWITCHES.items():
        p.add_argument(flag, dest=name, action="store_const", const=value, default=None, help=f"set `{name}`={value}")
    p.set_defaults(func=train_command)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [n for n, _ in OVERRIDES.values()] + [n for n, _ in SWITCHES.values()]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def train_command(args: argparse.Namespace) -> int:
    from spokenqa.config import RunConfig, preset
    from spokenqa.train import train

    overrides = _overrides(args)
    if args.resume:
        saved = Path(args.out) / "config.json"
        if not saved.is_file():
            raise ConfigError(f"{args.out}: nothing to resume (no config.json); run without --resume")
        cfg = RunConfig.load(saved)
        changed = {k: v for k, v in overrides.items() if getattr(cfg, k) != v}
        if changed:
            raise ConfigError(f"--resume continues the saved run; these flags differ from it: {', '.join(changed)}")
    else:
        if not args.train:
            args.train, args.eval = [str(SAMPLE)], args.eval or str(SAMPLE)
            print(f"spokenqa: no --train given: using the built-in sample {SAMPLE.name}", file=sys.stderr)
        cfg = preset(args.preset).replace(
            train_files=args.train, eval_file=args.eval, out_dir=args.out, **overrides
        )
    summary = train(cfg, resume=args.resume)
    history_file = Path(cfg.out_dir) / "history.json"
    history = json.loads(history_file.read_text()) if history_file.is_file() else []
    if history:  # the run's numbers as report.md shows them; on stderr: stdout stays one JSON object
        from spokenqa.report import epoch_table

        print(f"scores per epoch on {cfg.eval_file or '(no eval file)'}:\n{epoch_table(history)}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("status", "epochs_done", "steps", "best", "wall_seconds")}, indent=2))
    if summary["status"] == "interrupted":
        print(f"spokenqa: {summary['message']}", file=sys.stderr)
        return 130
    return 0


def _add_decoding_args(p: argparse.ArgumentParser) -> None:
    """Decoding settings `evaluate` and `predict` may change on a saved checkpoint."""
    p.add_argument("--decoder", choices=("nbest", "argmax"), help="default: the checkpoint's")
    p.add_argument("--max-answer-tokens", type=int, metavar="N",
                   help="longest answer the n-best decoder returns (default: the checkpoint's)")


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a SQuAD-format file (both metric families)")
    p.add_argument("--checkpoint", metavar="DIR", help="default: the shipped model")
    p.add_argument("--data", metavar="FILE", help="default: the built-in sample (27 questions)")
    _add_decoding_args(p)
    p.add_argument("--out", metavar="DIR", help="write metrics.json, predictions.json and nbest.json here")
    p.add_argument("--max-eval-examples", type=int, metavar="N", help="first N questions only")
    p.add_argument("--eval-batch-size", type=int, metavar="N", help="default: the checkpoint's")
    p.set_defaults(func=evaluate_command)


def _output_folder(folder: Path) -> Path:
    """Create an output folder before any expensive step; a path that cannot be one is bad usage."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{folder}: cannot create the output folder ({e.strerror})") from e
    return folder


def _write_text(path: Path, text: str) -> None:
    """Write atomically (temp file + rename): a failed or killed write keeps the previous file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise ConfigError(f"{path}: cannot write ({e.strerror})") from e


def _checkpoint(args: argparse.Namespace) -> Path:
    """--checkpoint, or the shipped model (said on stderr, so a user knows which model answered)."""
    from spokenqa.export import resolve_checkpoint

    folder = resolve_checkpoint(args.checkpoint)
    if args.checkpoint is None:
        print(f"spokenqa: no --checkpoint given: using the shipped model {folder}", file=sys.stderr)
    return folder


def _load_for_eval(args: argparse.Namespace, require_answers: bool):
    from spokenqa.data import load_squad
    from spokenqa.inference import prepare_for_inference
    from spokenqa.model import load_checkpoint

    if args.data is None:
        args.data = str(SAMPLE)
        print(f"spokenqa: no --data given: using the built-in sample {SAMPLE.name}", file=sys.stderr)
    model, tokenizer, cfg = load_checkpoint(_checkpoint(args))
    cfg = cfg.replace(
        decoder=getattr(args, "decoder", None),
        eval_batch_size=getattr(args, "eval_batch_size", None),
        max_answer_tokens=getattr(args, "max_answer_tokens", None),
        max_eval_examples=getattr(args, "max_eval_examples", None),
    ).validate()
    examples, stats = load_squad(args.data, cfg.lowercase, require_answers, max_questions=cfg.max_eval_examples)
    _, precision = prepare_for_inference(model, cfg.mixed_precision)
    return model, tokenizer, cfg, examples, stats, precision


def evaluate_command(args: argparse.Namespace) -> int:
    from spokenqa.inference import evaluate_examples

    out = _output_folder(Path(args.out)) if args.out else None
    model, tokenizer, cfg, examples, stats, precision = _load_for_eval(args, require_answers=True)
    result = evaluate_examples(model, tokenizer, examples, cfg, precision, progress=True)
    print(json.dumps(result.scores, indent=2))
    if out is not None:
        _write_text(out / "metrics.json", json.dumps(
            {**result.scores, "data": stats.to_dict(), "alignment": result.align.summary()}, indent=2) + "\n")
        _write_text(out / "predictions.json", json.dumps({p.id: p.text for p in result.predictions}, indent=2) + "\n")
        nbest = {p.id: [s.__dict__ for s in p.nbest] for p in result.predictions}
        _write_text(out / "nbest.json", json.dumps(nbest) + "\n")
    return 0


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="answer every question of a SQuAD-format file")
    p.add_argument("--checkpoint", metavar="DIR", help="default: the shipped model")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="FILE", help="predictions.json: {question_id: answer}")
    _add_decoding_args(p)
    p.set_defaults(func=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    from spokenqa.inference import answer_examples

    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; --out takes a file name")
    _output_folder(out.parent)
    model, tokenizer, cfg, examples, _, precision = _load_for_eval(args, require_answers=False)
    predictions, _ = answer_examples(model, tokenizer, examples, cfg, precision, progress=True)
    _write_text(out, json.dumps({p.id: p.text for p in predictions}, indent=2) + "\n")
    print(f"wrote {len(predictions)} predictions to {out}")
    return 0


def add_stats_parser(sub) -> None:
    p = sub.add_parser("stats", help="data diagnostics and histograms of a SQuAD-format file")
    p.add_argument("--data", required=True, metavar="FILE")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--model", default=None, help="tokenizer for span lengths (default: the shipped encoder)")
    p.add_argument("--max-length", type=int, default=None)
    p.set_defaults(func=stats_command)


def stats_command(args: argparse.Namespace) -> int:
    from spokenqa.config import preset
    from spokenqa.report import write_stats

    cfg = preset("cpu").replace(model=args.model, max_length=args.max_length).validate()
    summary = write_stats(Path(args.data), cfg, _output_folder(Path(args.out)))
    print(json.dumps(summary, indent=2))
    return 0


def add_ask_parser(sub) -> None:
    p = sub.add_parser("ask", help="answer questions over a transcript or an audio file")
    p.add_argument("--checkpoint", metavar="DIR", help="default: the shipped model")
    p.add_argument("--question", action="append", required=True, help="repeatable")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--context", metavar="TEXT")
    source.add_argument("--context-file", metavar="FILE")
    source.add_argument("--audio", metavar="FILE", help="a sound file (wav at any rate); transcribed first")
    p.add_argument("--engine", default="pocketsphinx", choices=("pocketsphinx", "whisper"))
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=ask_command)


def ask_command(args: argparse.Namespace) -> int:
    from spokenqa.qa import QA

    context = args.context
    if args.context_file:
        try:
            context = Path(args.context_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{args.context_file}: cannot read the context file ({e})") from e
    transcript = None
    if args.audio:
        from spokenqa.asr import transcribe

        transcript = transcribe(args.audio, engine=args.engine)
        context = None
    qa = QA.load(_checkpoint(args))
    results = qa.answer(args.question, context=context, transcript=transcript, top_k=args.top_k)
    if args.json:
        payload = {
            "context": transcript.text if transcript else context,
            "results": [{"question": r.question, "answers": [a.to_dict() for a in r.answers]} for r in results],
        }
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    for r in results:
        print(f"Q: {r.question}")
        for rank, a in enumerate(r.answers, 1):
            when = f"  [{a.start_s:.2f}s-{a.end_s:.2f}s]" if a.start_s is not None else ""
            print(f"  {rank}. {a.text}  (p={a.score:.3f}, chars {a.start}-{a.end}){when}")
        if not r.answers:
            print("  (no answer)")
    return 0


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint in Hugging Face's *ForQuestionAnswering layout")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a `linear`-head checkpoint folder")
    p.add_argument("out", metavar="OUT", help="folder to write (replaced atomically)")
    p.add_argument("--dtype", default="fp16", choices=("fp16", "bf16", "fp32"),
                   help="weight precision (default fp16: half the size of fp32)")
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    from spokenqa.export import export_checkpoint

    out = export_checkpoint(args.checkpoint, args.out, args.dtype)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {out} ({args.dtype} weights, {size:.1f} MB): loads with "
          f"AutoModelForQuestionAnswering.from_pretrained({str(out)!r}) and spokenqa --checkpoint")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spokenqa", description="Extractive question answering over spoken content.")
    sub = parser.add_subparsers(dest="command", required=True)
    from spokenqa.cli_audio import add_speak_parser, add_synthesize_parser, add_transcribe_parser
    from spokenqa.cli_data import add_data_parser
    from spokenqa.cli_serve import add_serve_parser

    for add in (
        add_train_parser,
        add_evaluate_parser,
        add_predict_parser,
        add_stats_parser,
        add_ask_parser,
        add_export_parser,
        add_data_parser,
        add_synthesize_parser,
        add_transcribe_parser,
        add_speak_parser,
        add_serve_parser,
    ):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    try:
        return args.func(args)
    except SpokenQAError as e:
        print(f"spokenqa: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spokenqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `spokenqa ... | head`: the reader left; stop quietly like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as e:
        if os.environ.get("SPOKENQA_DEBUG"):
            raise
        print(f"spokenqa: internal error: {type(e).__name__}: {e} (set SPOKENQA_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
