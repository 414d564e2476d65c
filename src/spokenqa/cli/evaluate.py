"""`spokenqa evaluate`, `predict` and `stats`: a checkpoint over a SQuAD-format file (scores,
answers), and the file's own diagnostics.

Inputs are checked in a fixed order, data file, then checkpoint folder, then the model: a bad
data file or checkpoint folder is a one-line error in well under a second, before the seconds of
importing torch and loading the model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from spokenqa.backends import add_backend_args
from spokenqa.cli.args import positive
from spokenqa.cli.ask import add_archive_args, check_archive_args, open_archive
from spokenqa.cli.common import (
    CHECKPOINT_HELP,
    choose_checkpoint,
    data_or_sample,
    no_outputs_on_failure,
    output_folder,
    write_json,
)
from spokenqa.config import DECODERS
from spokenqa.errors import ConfigError, notice


def _add_decoding_args(p: argparse.ArgumentParser) -> None:
    """Decoding settings `evaluate` and `predict` may change on a saved checkpoint."""
    p.add_argument("--decoder", choices=DECODERS, help="decoding of the span logits (default: the checkpoint's)")
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
    p.add_argument("--index", metavar="INDEX",
                   help="the open setting: ask each question of --data over this archive (its own paragraph "
                        "not given); adds retrieval recall@1/5/20, answered/abstained counts, latency")
    add_archive_args(p)
    add_backend_args(p)
    p.set_defaults(func=evaluate_command)


def _load_for_eval(args: argparse.Namespace, data: str, require_answers: bool):
    """Data, checkpoint settings (with this command's decoding flags over them), then the model.

    Every question of the file is answered unless this command's --max-eval-examples limits it
    (a limit the checkpoint's training run had is not inherited: `RunConfig.for_inference`).
    """
    from spokenqa.data import load_squad

    limit = getattr(args, "max_eval_examples", None)
    # parsed and validated before the checkpoint is even located; nearly every model reads lower case
    examples, stats = load_squad(data, True, require_answers, max_questions=limit)
    folder, cfg = choose_checkpoint(args.checkpoint)
    cfg = cfg.replace(
        decoder=args.decoder,
        eval_batch_size=getattr(args, "eval_batch_size", None),
        max_answer_tokens=args.max_answer_tokens,
    ).validate()
    if not cfg.lowercase:
        examples, stats = load_squad(data, False, require_answers, max_questions=limit)

    from spokenqa.backends import load_for_inference

    model, tokenizer, _, runtime = load_for_inference(folder, args.backend, args.quantize)
    return model, tokenizer, cfg, examples, stats, runtime


def _archive_setup(args: argparse.Namespace, data: str, require_answers: bool):
    """--index: the settings checked, the data loaded, then the archive opened (reader and calibration)."""
    from spokenqa.data import load_squad

    check_archive_args(args)
    limit = getattr(args, "max_eval_examples", None)
    examples, stats = load_squad(data, True, require_answers, max_questions=limit)
    folder, cfg = choose_checkpoint(args.checkpoint)
    cfg = cfg.replace(decoder=args.decoder, eval_batch_size=getattr(args, "eval_batch_size", None),
                      max_answer_tokens=args.max_answer_tokens).validate()
    if not cfg.lowercase:
        examples, stats = load_squad(data, False, require_answers, max_questions=limit)
    return examples, stats, open_archive(args, folder, cfg)


def _ask_archive(args: argparse.Namespace, archive, examples) -> tuple[list, list]:
    from spokenqa.archive.evaluate import ask_all, rank_all

    asked = ask_all(archive, examples, args.passages, args.mode, args.weight, args.fusion, progress=True)
    return asked, rank_all(archive, asked, args.passages, args.threshold)


def evaluate_index_command(args: argparse.Namespace) -> int:
    import os

    from spokenqa.archive.evaluate import score

    out = Path(args.out) if args.out else None
    with no_outputs_on_failure(out) if out else contextlib.nullcontext():
        if out is not None:
            output_folder(out)
        examples, stats, archive = _archive_setup(args, data_or_sample(args.data), require_answers=True)
        with archive:
            asked, results = _ask_archive(args, archive, examples)
            cal = archive.calibration
            settings = {"index": args.index, "passages": args.passages, "threshold": results[0].threshold,
                        **archive.settings(args.mode, args.weight, args.fusion),
                        "calibration": cal.path, "load_average": os.getloadavg()}
            metrics = {**score(asked, results), "settings": settings, **archive.qa.runtime.to_dict()}
        notice(f"{stats.summary()}")
        print(json.dumps(metrics, indent=2))
        if out is not None:
            write_json(out / "metrics.json", {**metrics, "data": stats.to_dict()})
            write_json(out / "predictions.json", {a.example.id: r.answers[0].text if r.answers else ""
                                                  for a, r in zip(asked, results, strict=True)})
            write_json(out / "answers.json", {a.example.id: {**r.to_dict(), "hits": [h.passage.path for h in r.hits],
                                                             "found_at": a.found_at(), "ms": a.seconds * 1000}
                                              for a, r in zip(asked, results, strict=True)}, indent=None)
    return 0


def evaluate_command(args: argparse.Namespace) -> int:
    if args.index is not None:
        return evaluate_index_command(args)
    out = Path(args.out) if args.out else None
    with no_outputs_on_failure(out) if out else contextlib.nullcontext():
        if out is not None:
            output_folder(out)
        model, tokenizer, cfg, examples, stats, runtime = _load_for_eval(
            args, data_or_sample(args.data), require_answers=True)
        from spokenqa.inference import answer_texts, evaluate_examples, nbest_lists

        result = evaluate_examples(model, tokenizer, examples, cfg, runtime.precision, progress=True)
        notice(f"{stats.summary()}")
        print(json.dumps({**result.scores, **runtime.to_dict()}, indent=2))
        if out is not None:
            write_json(out / "metrics.json", result.metrics(**runtime.to_dict(), data=stats.to_dict()))
            write_json(out / "predictions.json", answer_texts(result.predictions))
            write_json(out / "nbest.json", nbest_lists(result.predictions), indent=None)
    return 0


def add_predict_parser(sub) -> None:
    p = sub.add_parser("predict", help="answer every question of a SQuAD-format file")
    p.add_argument("--checkpoint", metavar="DIR", help=CHECKPOINT_HELP)
    p.add_argument("--data", required=True, metavar="FILE",
                   help="SQuAD-format file; every question is answered (gold answers optional)")
    p.add_argument("--out", required=True, metavar="FILE",
                   help='predictions.json: {question_id: answer} ("" where --index abstained)')
    _add_decoding_args(p)
    p.add_argument("--index", metavar="INDEX",
                   help="answer each question over this archive instead of its own paragraph")
    add_archive_args(p)
    add_backend_args(p)
    p.set_defaults(func=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; --out takes a file name")
    if args.index is not None:
        with no_outputs_on_failure(out.parent):
            output_folder(out.parent)
            examples, _, archive = _archive_setup(args, args.data, require_answers=False)
            with archive:
                asked, results = _ask_archive(args, archive, examples)
            write_json(out, {a.example.id: r.answers[0].text if r.answers else ""
                             for a, r in zip(asked, results, strict=True)})
        abstained = sum(r.abstained for r in results)
        print(f"wrote {len(results)} predictions to {out} ({abstained} not in this archive: \"\")")
        return 0
    with no_outputs_on_failure(out.parent):
        output_folder(out.parent)
        model, tokenizer, cfg, examples, _, runtime = _load_for_eval(args, args.data, require_answers=False)
        from spokenqa.inference import answer_examples, answer_texts

        predictions, _ = answer_examples(model, tokenizer, examples, cfg, runtime.precision, progress=True)
        write_json(out, answer_texts(predictions))
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
    with no_outputs_on_failure(Path(args.out)):
        summary = write_stats(Path(args.data), cfg, output_folder(Path(args.out)))
    notice(f"{DataStats(**summary['data']).summary()}")
    print(json.dumps(summary, indent=2))
    return 0


__all__ = [
    "add_evaluate_parser",
    "add_predict_parser",
    "add_stats_parser",
    "evaluate_command",
    "predict_command",
    "stats_command",
]
