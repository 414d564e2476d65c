"""`spokenqa data ...`: build spoken-style training sets from the command line.

Subcommands (each reads one file, writes one SQuAD v1.1 JSON file and prints a short summary):

- ``spokenize IN.json OUT.json [--noise-rate R] [--seed S]``: text SQuAD -> Spoken-SQuAD style
  (:func:`spokenqa.spoken.spokenize_squad`), optionally followed by simulated ASR noise;
- ``noise IN.json OUT.json --noise-rate R [--seed S]``: simulated ASR noise only
  (:func:`spokenqa.corpus.noise.add_asr_noise`);
- ``convert-synth IN.jsonl OUT.json``: the Festival+Sphinx synth set -> SQuAD over its
  transcripts (:func:`spokenqa.corpus.align.convert_synth`);
- ``holdout IN.json OUT.json --synth SYNTH.jsonl``: drop from a SQuAD file the paragraphs that
  the synth set speaks, so that set can validate a model trained on the rest
  (:func:`spokenqa.corpus.subsets.drop_paragraphs`);
- ``sample IN.json OUT.json --questions N``: a seeded random sample of questions
  (:func:`spokenqa.corpus.subsets.sample_questions`);
- ``negatives IN.json OUT.json --rate R``: add SQuAD 2.0-style `is_impossible` copies of a share
  of the questions on paragraphs without their answer (:func:`spokenqa.corpus.negatives.add_negatives`).

``add_data_parser(sub)`` registers ``data`` and its subcommands; each subcommand sets ``func`` to
its own ``<name>_command(args) -> int`` (read, one library call, write), like the other commands.
Bad input raises DataError (file and place), an impossible setting or unwritable output
ConfigError; the CLI turns both into exit status 2.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spokenqa.cli.common import write_json
from spokenqa.errors import ConfigError
from spokenqa.files import read_json

_SHOW = 3  # examples of unmapped / fuzzy answers printed in the summary


def add_data_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``data`` with its subcommands to the top-level subparsers ``sub``."""
    p = sub.add_parser("data", help="make spoken-style training data (spokenize, ASR noise, "
                                    "synth conversion)")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int],
                input_name: str = "IN.json") -> argparse.ArgumentParser:
        """A subcommand reading one file and writing one, with optional --stats."""
        c = dsub.add_parser(name, help=help)
        kind = "Festival+Sphinx synth set, one JSON object per paragraph" if input_name.endswith(
            ".jsonl") else "SQuAD v1.1-format file"
        c.add_argument("input", metavar=input_name, help=f"input: {kind}")
        c.add_argument("output", metavar="OUT.json", help="SQuAD v1.1-format file to write (replaced atomically)")
        c.add_argument("--stats", metavar="FILE", help="also write the counts as JSON here")
        c.set_defaults(func=func)
        return c

    sp = command("spokenize", "text SQuAD -> Spoken-SQuAD transcript style (answers re-aligned)",
                 spokenize_command)
    sp.add_argument("--noise-rate", type=float, default=None, metavar="R",
                    help="then add simulated ASR noise at word error rate R (e.g. 0.2)")
    sp.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")

    nz = command("noise", "add simulated ASR noise to a SQuAD-format file (answers kept exact)",
                 noise_command)
    nz.add_argument("--noise-rate", type=float, required=True, metavar="R",
                    help="target word error rate, in [0, 1)")
    nz.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")

    command("convert-synth", "synth Festival+Sphinx JSONL -> SQuAD over its transcripts",
            convert_synth_command, "IN.jsonl")

    ho = command("holdout", "drop the paragraphs of a synth JSONL from a SQuAD file (keeps the "
                            "synth set a clean validation set)", holdout_command)
    ho.add_argument("--synth", required=True, metavar="SYNTH.jsonl",
                    help="the synth set whose paragraphs (matched by their original text) go")

    sm = command("sample", "a seeded random sample of N questions of a SQuAD-format file",
                 sample_command)
    sm.add_argument("--questions", type=int, required=True, metavar="N", help="questions to keep")
    sm.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")

    ng = command("negatives", "add copies of a share of the questions on another paragraph of "
                              "their article that lacks the answer (SQuAD 2.0 is_impossible)",
                 negatives_command)
    ng.add_argument("--rate", type=float, required=True, metavar="R",
                    help="share of the answerable questions that get such a copy, in [0, 1]")
    ng.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


# --- shared steps -----------------------------------------------------------------------------

def _read_squad(src: Path) -> dict[str, Any]:
    """A SQuAD-format file, its shape validated (the shape the transforms walk)."""
    from spokenqa.data import validate_squad

    data = read_json(src)
    validate_squad(data, str(src))
    return data


def _write(args: argparse.Namespace, data: dict[str, Any], report: dict[str, Any],
           started: float) -> int:
    """OUT.json (atomically), then the counts to --stats; prints where it wrote and how long
    the subcommand took."""
    dst = Path(args.output)
    write_json(dst, data, indent=None, ensure_ascii=False)
    summary = {"command": args.data_command, "input": str(Path(args.input)), "output": str(dst),
               **report, "seconds": round(time.perf_counter() - started, 1)}
    if args.stats:
        write_json(Path(args.stats), summary, indent=None, ensure_ascii=False)
    print(f"wrote {dst} in {summary['seconds']} s")
    return 0


def _check_rate(rate: float | None) -> None:
    if rate is not None and not 0.0 <= rate < 1.0:
        raise ConfigError(f"--noise-rate {rate}: must be in [0, 1)")


def _add_noise(data: dict[str, Any], args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    from spokenqa.corpus.noise import add_asr_noise

    data, nstats = add_asr_noise(data, args.noise_rate, args.seed, source=str(Path(args.input)))
    stats = nstats.to_dict()
    _print_noise(stats)
    return data, stats


def _print_noise(stats: dict[str, Any]) -> None:
    ops = ", ".join(f"{k} {v}" for k, v in sorted(stats["ops"].items()))
    print(f"noise: target rate {stats['rate']:.3f}, seed {stats['seed']}: measured WER "
          f"{stats['wer']:.4f} over {stats['words']} words (S {stats['substitutions']}, "
          f"D {stats['deletions']}, I {stats['insertions']}); ops: {ops}; "
          f"{stats['protected_words']} answer words protected")
    if stats["answers_dropped"]:
        print(f"noise: {stats['answers_dropped']} answers could not be protected (offset "
              f"and text not found) and were dropped, {stats['questions_dropped']} questions "
              "with them")
        for ex in stats["examples"][:_SHOW]:
            print(f"  {ex['place']} id {ex['id']}: {ex['answer']!r}")


# --- the subcommands ----------------------------------------------------------------------------

def spokenize_command(args: argparse.Namespace) -> int:
    from spokenqa.spoken import spokenize_squad

    started = time.perf_counter()
    _check_rate(args.noise_rate)
    src = Path(args.input)
    data, sstats = spokenize_squad(read_json(src), source=str(src))
    report: dict[str, Any] = {"spokenize": sstats.to_dict()}
    _print_spokenize(report["spokenize"])
    if args.noise_rate is not None:
        data, report["noise"] = _add_noise(data, args)
    return _write(args, data, report, started)


def _print_spokenize(s: dict[str, Any]) -> None:
    print(f"spokenize: {s['articles']} articles, {s['paragraphs']} paragraphs, "
          f"{s['questions']} questions -> {s['questions_kept']} kept "
          f"({s['questions_dropped']} dropped); answers {s['answers']}: "
          f"{s['answers_exact']} mapped exactly, {s['answers_searched']} found by "
          f"search near their place, {s['answers_unmapped']} unmapped")
    for ex in s["examples"][:_SHOW]:
        print(f"  unmapped: {ex['place']} id {ex['id']}: {ex['answer']!r} -> "
              f"{ex['spoken']!r} ({ex['reason']}); context: ...{ex['context']}...")


def noise_command(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    _check_rate(args.noise_rate)
    data, stats = _add_noise(read_json(Path(args.input)), args)
    return _write(args, data, {"noise": stats}, started)


def convert_synth_command(args: argparse.Namespace) -> int:
    from spokenqa.corpus.align import convert_synth, load_synth_jsonl

    started = time.perf_counter()
    src = Path(args.input)
    data, astats = convert_synth(load_synth_jsonl(src), source=str(src))
    a = astats.to_dict()
    pct = 100.0 * a["questions_kept"] / max(a["questions"], 1)
    print(f"convert-synth: {a['paragraphs']} paragraphs, {a['questions']} questions -> "
          f"{a['questions_kept']} kept ({pct:.1f}%), {a['questions_dropped']} dropped; "
          f"answers: {a['answers_exact']} exact, {a['answers_fuzzy']} fuzzy, "
          f"{a['answers_dropped']} not found ({a['verbatim_elsewhere']} of them occur "
          "verbatim elsewhere in the transcript, too far from their place to trust)")
    for ex in a["fuzzy_examples"][:_SHOW]:
        print(f"  fuzzy: {ex['spoken']!r} ~ {ex['transcript']!r} "
              f"(char distance {ex['char_distance']})")
    for ex in a["dropped_examples"][:_SHOW]:
        print(f"  dropped: {ex['place']}: {ex['answer']!r} ({ex['reason']})")
    return _write(args, data, {"convert_synth": a}, started)


def holdout_command(args: argparse.Namespace) -> int:
    from spokenqa.corpus.align import load_synth_jsonl
    from spokenqa.corpus.subsets import drop_paragraphs

    started = time.perf_counter()
    src = Path(args.input)
    data = _read_squad(src)
    contexts = {rec["context"] for rec in load_synth_jsonl(args.synth)}
    data, n_par, n_q = drop_paragraphs(data, contexts)
    print(f"holdout: dropped {n_par} paragraphs ({n_q} questions) of the {len(contexts)} "
          f"in {args.synth}")
    if n_par < len(contexts):
        print(f"holdout: {len(contexts) - n_par} synth paragraphs were not found in {src}")
    report = {"synth": args.synth, "synth_paragraphs": len(contexts),
              "paragraphs_dropped": n_par, "questions_dropped": n_q}
    return _write(args, data, {"holdout": report}, started)


def sample_command(args: argparse.Namespace) -> int:
    from spokenqa.corpus.subsets import sample_questions

    started = time.perf_counter()
    src = Path(args.input)
    data = sample_questions(_read_squad(src), args.questions, args.seed, source=str(src))
    print(f"sample: kept {args.questions} questions (seed {args.seed})")
    return _write(args, data, {"questions": args.questions}, started)


def negatives_command(args: argparse.Namespace) -> int:
    from spokenqa.corpus.negatives import add_negatives

    started = time.perf_counter()
    if not 0.0 <= args.rate <= 1.0:
        raise ConfigError(f"--rate {args.rate}: must be in [0, 1]")
    src = Path(args.input)
    data, nstats = add_negatives(_read_squad(src), args.rate, args.seed, source=str(src))
    print(f"negatives: {nstats.negatives} of {nstats.questions} questions copied onto a paragraph "
          f"without their answer (rate {args.rate}, seed {args.seed}); {nstats.no_candidate} drawn "
          "had no such paragraph in their article")
    return _write(args, data, {"negatives": nstats.to_dict()}, started)


__all__ = [
    "add_data_parser",
    "convert_synth_command",
    "holdout_command",
    "negatives_command",
    "noise_command",
    "sample_command",
    "spokenize_command",
]
