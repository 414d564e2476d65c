"""Command line: one `add_<cmd>_parser` + one `<cmd>_command` per subcommand, each body one
library call. Bad input or usage -> one line on stderr, exit status 2; internal errors -> 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spokenqa.backends import add_backend_args
from spokenqa.cli.args import positive
from spokenqa.errors import ConfigError, SpokenQAError
from spokenqa.files import atomic_write

if TYPE_CHECKING:
    from spokenqa.config import RunConfig

SAMPLE = Path(__file__).parents[1] / "sample" / "sample_spoken.json"  # 27 questions, written for demos
CHECKPOINT_HELP = "a folder written by `spokenqa train` (e.g. runs/NAME/best) or `export` (default: the shipped model)"

# Flag -> (config field, type, help) for every setting a user may override on `train`; the
# default is the preset's (`cpu` unless --preset says otherwise).
OVERRIDES: dict[str, tuple[str, type, str]] = {
    "--model": ("model", str, "encoder: a hub name or a local folder (default: the shipped MiniLM)"),
    "--epochs": ("epochs", int, "passes over the training data"),
    "--max-steps": ("max_steps", int, "stop after N optimizer steps (equal-step comparisons)"),
    "--max-train-examples": ("max_train_examples", int, "a seeded random sample of N training questions"),
    "--max-eval-examples": ("max_eval_examples", int,
                            "score the first N questions of --eval during this run only"),
    "--max-length": ("max_length", int, "tokens per window: question + context + special tokens"),
    "--doc-stride": ("doc_stride", int, "context tokens shared by consecutive windows"),
    "--max-question-tokens": ("max_question_tokens", int, "longer questions are cut (and counted)"),
    "--negative-window-keep": ("negative_window_keep", float,
                               "fraction of training windows without the answer that are kept"),
    "--init-from": ("init_from", str, ("start from this checkpoint's weights, head included "
                                       "('shipped': spokenqa's own model): continued training")),
    "--snapshot-every": ("snapshot_every", int, ("keep the weights every N steps in snapshots/step_N/ "
                                                 "(for `spokenqa average`; 0: none)")),
    "--head": ("head", str, "linear | reference (concat of two layers, then an MLP)"),
    "--loss": ("loss", str, "ce | focal"),
    "--focal-gamma": ("focal_gamma", float, "gamma of the focal loss"),
    "--batch-size": ("train_batch_size", int, "training windows per optimizer step"),
    "--eval-batch-size": ("eval_batch_size", int, "windows per evaluation batch"),
    "--lr": ("learning_rate", float, "peak learning rate of AdamW"),
    "--weight-decay": ("weight_decay", float, "AdamW weight decay"),
    "--warmup-ratio": ("warmup_ratio", float, "share of the steps spent warming up the learning rate"),
    "--max-grad-norm": ("max_grad_norm", float, "gradient clipping norm"),
    "--seed": ("seed", int, "seed of sampling, shuffling and initialisation"),
    "--mixed-precision": ("mixed_precision", str, "auto | bf16 | fp16 | no"),
    "--decoder": ("decoder", str, "nbest | argmax"),
    "--n-best": ("n_best", int, "start and end candidates the n-best decoder combines"),
    "--max-answer-tokens": ("max_answer_tokens", int, "longest answer the n-best decoder returns"),
    "--select-metric": ("select_metric", str,
                        ("metric that picks best/: official_f1 | official_em | reference_f1 | "
                         "reference_em | reference_wer")),
    "--checkpoint-every": ("checkpoint_every", int, ("optimizer steps between resumable checkpoints "
                                                     "(0: at epoch ends only)")),
    "--eval-every": ("eval_every", int, "also evaluate every N steps: the learning curve (0: off)"),
    "--threads": ("num_threads", int, "torch CPU threads (default: torch's)"),
}
SWITCHES = {  # flag -> (field, value when given, help)
    "--baseline": ("baseline", True, "evaluate the untrained head first (epoch 0)"),
    "--skip-nonfinite": ("skip_nonfinite", True, "skip a batch whose loss is NaN/inf instead of stopping"),
    "--expand-answers": ("expand_answers", True, "one training example per answer entry (reference)"),
    "--no-lowercase": ("lowercase", False, "keep the case of contexts and questions"),
    "--no-group-by-length": ("group_by_length", False, "batch windows in random order, not by length"),
    "--keep-resume-state": ("keep_resume_state", True, ("keep last/training_state.pt (the optimizer state, "
                            "twice the model's size) when the run finishes, to continue it later")),
}


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="fine-tune a span-QA model and evaluate it each epoch")
    p.add_argument("--preset", default="cpu", help="reference | cpu (default)")
    p.add_argument("--train", action="append", default=[], metavar="FILE", help="SQuAD-format training file (repeatable; default: the built-in sample)")
    p.add_argument("--eval", metavar="FILE", help="SQuAD-format evaluation file, scored after each epoch")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    for flag, (name, kind, text) in OVERRIDES.items():
        p.add_argument(flag, type=kind, dest=name, default=None, help=f"{text} (config `{name}`)")
    for flag, (name, value, text) in SWITCHES.items():
        p.add_argument(flag, dest=name, action="store_const", const=value, default=None,
                       help=f"{text} (config `{name}`={value})")
    p.set_defaults(func=train_command)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = [n for n, _, _ in OVERRIDES.values()] + [n for n, _, _ in SWITCHES.values()]
    return {n: getattr(args, n) for n in names if getattr(args, n) is not None}


def train_command(args: argparse.Namespace) -> int:
    from spokenqa.config import RunConfig, preset

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
        for path in (*cfg.train_files, *([cfg.eval_file] if cfg.eval_file else [])):
            if not Path(path).is_file():  # before the second of imports below
                raise ConfigError(f"{path}: no such data file")
    from spokenqa.train import train

    with _no_outputs_on_failure(Path(cfg.out_dir)):
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
    p.add_argument("--decoder", choices=("nbest", "argmax"), help="decoding of the span logits (default: the checkpoint's)")
    p.add_argument("--max-answer-tokens", type=positive(int), metavar="N",
                   help="longest answer the n-best decoder returns (default: the checkpoint's)")


def add_evaluate_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="score a checkpoint on a SQuAD-format file (both metric families)")
    p.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    p.add_argument("--data", metavar="FILE",
                   help="SQuAD-format file to score, every question of it (default: the built-in sample, 27 questions)")
    _add_decoding_args(p)
    p.add_argument("--out", metavar="DIR", help="write metrics.json, predictions.json and nbest.json here")
    p.add_argument("--max-eval-examples", type=positive(int), metavar="N",
                   help="score the first N questions only (default: all; a checkpoint's training limit is not inherited)")
    p.add_argument("--eval-batch-size", type=positive(int), metavar="N",
                   help="windows per batch (default: the checkpoint's, which reproduces its validation scores)")
    add_backend_args(p)
    p.set_defaults(func=evaluate_command)


def _output_folder(folder: Path) -> Path:
    """Create an output folder before any expensive step; a path that cannot be one is bad usage.
    Used inside `_no_outputs_on_failure`, which removes it again if the command then fails."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"{folder}: cannot create the output folder ({e.strerror})") from e
    return folder


@contextlib.contextmanager
def _no_outputs_on_failure(folder: Path) -> Iterator[None]:
    """A command that fails leaves no output behind: the folders on the way to `folder` that did
    not exist before are removed again, if they are still empty, when the body raises."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    except BaseException:
        for path in created:  # deepest first
            try:
                path.rmdir()
            except OSError:  # not empty (a failed run's checkpoint, kept for --resume) or gone
                break
        raise


def _write_text(path: Path, text: str) -> None:
    """Write atomically: a failed or killed write keeps the previous file; a failure is one line."""
    try:
        atomic_write(path, text)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write ({e.strerror})") from e


def _checkpoint(args: argparse.Namespace) -> tuple[Path, RunConfig]:
    """--checkpoint, or the shipped model (said on stderr, so a user knows which model answered),
    and the settings it answers with, read without loading the weights."""
    from spokenqa.checkpoint import checkpoint_config

    if args.checkpoint is not None:
        folder = Path(args.checkpoint)
    else:
        from spokenqa.checkpoint import resolve_checkpoint

        folder = resolve_checkpoint(None)
        print(f"spokenqa: no --checkpoint given: using the shipped model {folder}", file=sys.stderr)
    return folder, checkpoint_config(folder).for_inference()


def _load_for_eval(args: argparse.Namespace, require_answers: bool):
    """Data, checkpoint settings, then the model, in that order: a bad data file or checkpoint
    folder is a one-line error in well under a second, before seconds of model loading.

    Every question of the file is answered unless this command's --max-eval-examples limits it
    (a limit the checkpoint's training run had is not inherited: `RunConfig.for_inference`).
    """
    from spokenqa.data import load_squad

    if args.data is None:
        args.data = str(SAMPLE)
        print(f"spokenqa: no --data given: using the built-in sample {SAMPLE.name}", file=sys.stderr)
    limit = getattr(args, "max_eval_examples", None)
    # parsed and validated before the checkpoint is even located; nearly every model reads lower case
    examples, stats = load_squad(args.data, True, require_answers, max_questions=limit)
    folder, cfg = _checkpoint(args)
    cfg = cfg.replace(
        decoder=getattr(args, "decoder", None),
        eval_batch_size=getattr(args, "eval_batch_size", None),
        max_answer_tokens=getattr(args, "max_answer_tokens", None),
    ).validate()
    if not cfg.lowercase:
        examples, stats = load_squad(args.data, False, require_answers, max_questions=limit)

    from spokenqa.backends import load_for_inference

    model, tokenizer, _, runtime = load_for_inference(folder, args.backend, args.quantize)
    return model, tokenizer, cfg, examples, stats, runtime


def evaluate_command(args: argparse.Namespace) -> int:
    with _no_outputs_on_failure(Path(args.out)) if args.out else contextlib.nullcontext():
        return _evaluate(args)


def _evaluate(args: argparse.Namespace) -> int:
    out = _output_folder(Path(args.out)) if args.out else None
    model, tokenizer, cfg, examples, stats, runtime = _load_for_eval(args, require_answers=True)
    from spokenqa.inference import evaluate_examples

    result = evaluate_examples(model, tokenizer, examples, cfg, runtime.precision, progress=True)
    print(f"spokenqa: {stats.summary()}", file=sys.stderr)
    print(json.dumps({**result.scores, **runtime.to_dict()}, indent=2))
    if out is not None:
        _write_text(out / "metrics.json", json.dumps(
            {**result.scores, **runtime.to_dict(), "data": stats.to_dict(), "alignment": result.align.summary()},
            indent=2) + "\n")
        _write_text(out / "predictions.json", json.dumps({p.id: p.text for p in result.predictions}, indent=2) + "\n")
        nbest = {p.id: [s.__dict__ for s in p.nbest] for p in result.predictions}
        _write_text(out / "nbest.json", json.dumps(nbest) + "\n")
    return 0


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="answer every question of a SQuAD-format file")
    p.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    p.add_argument("--data", required=True, metavar="FILE",
                   help="SQuAD-format file; every question is answered (gold answers optional)")
    p.add_argument("--out", required=True, metavar="FILE", help="predictions.json: {question_id: answer}")
    _add_decoding_args(p)
    add_backend_args(p)
    p.set_defaults(func=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; --out takes a file name")
    with _no_outputs_on_failure(out.parent):
        return _predict(args, out)


def _predict(args: argparse.Namespace, out: Path) -> int:
    _output_folder(out.parent)
    model, tokenizer, cfg, examples, _, runtime = _load_for_eval(args, require_answers=False)
    from spokenqa.inference import answer_examples

    predictions, _ = answer_examples(model, tokenizer, examples, cfg, runtime.precision, progress=True)
    _write_text(out, json.dumps({p.id: p.text for p in predictions}, indent=2) + "\n")
    print(f"wrote {len(predictions)} predictions to {out} ({runtime})")
    return 0


def add_stats_parser(sub) -> None:
    p = sub.add_parser("stats", help="data diagnostics and histograms of a SQuAD-format file")
    p.add_argument("--data", required=True, metavar="FILE", help="SQuAD-format file to describe")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for stats.json and figures/")
    p.add_argument("--model", default=None, help="tokenizer for span lengths (default: the shipped encoder)")
    p.add_argument("--max-length", type=positive(int), default=None, metavar="N",
                   help="window length in tokens for the alignment counts (default 384)")
    p.set_defaults(func=stats_command)


def stats_command(args: argparse.Namespace) -> int:
    from spokenqa.config import preset
    from spokenqa.data import DataStats
    from spokenqa.report import write_stats

    cfg = preset("cpu").replace(model=args.model, max_length=args.max_length).validate()
    with _no_outputs_on_failure(Path(args.out)):
        summary = write_stats(Path(args.data), cfg, _output_folder(Path(args.out)))
    print(f"spokenqa: {DataStats(**summary['data']).summary()}", file=sys.stderr)
    print(json.dumps(summary, indent=2))
    return 0


def add_ask_parser(sub) -> None:
    p = sub.add_parser("ask", help="answer questions over a transcript or an audio file")
    p.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    p.add_argument("--question", action="append", required=True, metavar="TEXT",
                   help="a question (repeat the flag to ask several over the same context)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--context", metavar="TEXT", help="the transcript to answer from, as text")
    source.add_argument("--context-file", metavar="FILE", help="the transcript to answer from, in a UTF-8 text file")
    source.add_argument("--audio", metavar="FILE", help="a sound file (wav at any rate); transcribed first")
    p.add_argument("--engine", default="pocketsphinx", choices=("pocketsphinx", "whisper"),
                   help="ASR engine for --audio (default pocketsphinx)")
    p.add_argument("--top-k", type=positive(int), default=1, metavar="K",
                   help="answers per question, best first (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_backend_args(p)
    p.set_defaults(func=ask_command)


def ask_command(args: argparse.Namespace) -> int:
    """Questions, context and checkpoint folder are checked, and audio transcribed, before the
    model loads: bad input is a one-line error at once, not after seconds of loading."""
    if not all(q.strip() for q in args.question):
        raise ConfigError("--question: empty question")
    context = args.context
    if args.context_file:
        try:
            context = Path(args.context_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{args.context_file}: cannot read the context file ({e})") from e
        if not context.strip():
            raise ConfigError(f"{args.context_file}: the context file is empty")
    elif context is not None and not context.strip():
        raise ConfigError("--context: the context is empty")
    folder, _ = _checkpoint(args)
    transcript = None
    if args.audio:
        from spokenqa.audio.asr import transcribe
        from spokenqa.errors import AudioError

        transcript = transcribe(args.audio, engine=args.engine)
        if not transcript.text.strip():
            raise AudioError(f"{args.audio}: no speech recognised (the transcript is empty)")
        context = None
    from spokenqa.qa import QA

    qa = QA.load(folder, backend=args.backend, quantize=args.quantize)
    results = qa.answer(args.question, context=context, transcript=transcript, top_k=args.top_k)
    if args.json:
        payload = {
            "context": transcript.text if transcript else context,
            "results": [{"question": r.question, "answers": [a.to_dict() for a in r.answers]} for r in results],
            **qa.runtime.to_dict(),
        }
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    print(f"spokenqa: answered with {qa.runtime}", file=sys.stderr)
    for r in results:
        print(f"Q: {r.question}")
        for rank, a in enumerate(r.answers, 1):
            when = f"  [{a.start_s:.2f}s-{a.end_s:.2f}s]" if a.start_s is not None else ""
            print(f"  {rank}. {a.text}  (p={a.score:.3f}, chars {a.start}-{a.end}){when}")
        if not r.answers:
            print("  (no answer)")
    return 0


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a checkpoint in Hugging Face's *ForQuestionAnswering layout, or as ONNX")
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint folder (`linear` head for --format hf)")
    p.add_argument("out", metavar="OUT", help="folder to write (replaced atomically)")
    p.add_argument("--format", default="hf", choices=("hf", "onnx"),
                   help="hf (default): safetensors for transformers and spokenqa; onnx: model.onnx (dynamic "
                   "batch and sequence) with the tokenizer files, for ONNX Runtime")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"),
                   help="--format hf: weight precision (default fp16: half the size of fp32)")
    p.add_argument("--quantize", choices=("int8",),
                   help="--format onnx: dynamic int8 Linear layers (default: fp32)")
    p.add_argument("--max-answer-tokens", type=int, metavar="N",
                   help="--format hf: the answer-length cap stored with the model (default: the "
                   "checkpoint's); choose it on validation data with scripts/choose_decoding.py")
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    if args.format == "onnx":
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
    if args.quantize:
        raise ConfigError("--quantize is for --format onnx")
    from spokenqa.export import export_checkpoint

    args.dtype = args.dtype or "fp16"
    out = export_checkpoint(args.checkpoint, args.out, args.dtype, max_answer_tokens=args.max_answer_tokens)
    size = (out / "model.safetensors").stat().st_size / 1e6
    print(f"wrote {out} ({args.dtype} weights, {size:.1f} MB): loads with "
          f"AutoModelForQuestionAnswering.from_pretrained({str(out)!r}) and spokenqa --checkpoint")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spokenqa", description="Extractive question answering over spoken content.")
    sub = parser.add_subparsers(dest="command", required=True)
    from spokenqa.cli.audio import add_speak_parser, add_synthesize_parser, add_transcribe_parser
    from spokenqa.cli.data import add_data_parser
    from spokenqa.cli.serve import add_serve_parser

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
    # transformers reads this when a command first imports it (its warnings are not for users); set
    # here rather than by importing transformers, which alone takes a second before any input check
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:  # imported already (a notebook, tests): the variable is read
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
