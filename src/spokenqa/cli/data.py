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
  (:func:`drop_paragraphs`);
- ``sample IN.json OUT.json --questions N``: a seeded random sample of questions;
- ``negatives IN.json OUT.json --rate R``: add SQuAD 2.0-style `is_impossible` copies of a share
  of the questions on paragraphs without their answer (:func:`spokenqa.corpus.negatives.add_negatives`).

Hook-up in cli.py: ``add_data_parser(sub)`` registers the parser and sets ``func`` to
:func:`data_command`, like the other subcommands. Bad input raises DataError (file and place),
an impossible setting or unwritable output ConfigError; the CLI turns both into exit status 2.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path
from typing import Any

from spokenqa.errors import ConfigError
from spokenqa.files import atomic_write_json, read_json

__all__ = ["add_data_parser", "data_command"]

_SHOW = 3  # examples of unmapped / fuzzy answers printed in the summary


def add_data_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``data`` with its subcommands to the top-level subparsers ``sub``."""
    p = sub.add_parser("data", help="make spoken-style training data (spokenize, ASR noise, "
                                    "synth conversion)")
    dsub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    def command(name: str, help: str, input_name: str = "IN.json") -> argparse.ArgumentParser:
        """A subcommand reading one file and writing one, with optional --stats."""
        c = dsub.add_parser(name, help=help)
        kind = "Festival+Sphinx synth set, one JSON object per paragraph" if input_name.endswith(
            ".jsonl") else "SQuAD v1.1-format file"
        c.add_argument("input", metavar=input_name, help=f"input: {kind}")
        c.add_argument("output", metavar="OUT.json", help="SQuAD v1.1-format file to write (replaced atomically)")
        c.add_argument("--stats", metavar="FILE", help="also write the counts as JSON here")
        return c

    sp = command("spokenize", "text SQuAD -> Spoken-SQuAD transcript style (answers re-aligned)")
    sp.add_argument("--noise-rate", type=float, default=None, metavar="R",
                    help="then add simulated ASR noise at word error rate R (e.g. 0.2)")
    sp.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")

    nz = command("noise", "add simulated ASR noise to a SQuAD-format file (answers kept exact)")
    nz.add_argument("--noise-rate", type=float, required=True, metavar="R",
                    help="target word error rate, in [0, 1)")
    nz.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")

    command("convert-synth", "synth Festival+Sphinx JSONL -> SQuAD over its transcripts", "IN.jsonl")

    ho = command("holdout", "drop the paragraphs of a synth JSONL from a SQuAD file (keeps the "
                            "synth set a clean validation set)")
    ho.add_argument("--synth", required=True, metavar="SYNTH.jsonl",
                    help="the synth set whose paragraphs (matched by their original text) go")

    sm = command("sample", "a seeded random sample of N questions of a SQuAD-format file")
    sm.add_argument("--questions", type=int, required=True, metavar="N", help="questions to keep")
    sm.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")

    ng = command("negatives", "add copies of a share of the questions on another paragraph of "
                              "their article that lacks the answer (SQuAD 2.0 is_impossible)")
    ng.add_argument("--rate", type=float, required=True, metavar="R",
                    help="share of the answerable questions that get such a copy, in [0, 1]")
    ng.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.set_defaults(func=data_command)


def sample_questions(data: dict[str, Any], n: int, seed: int,
                     source: str = "<data>") -> dict[str, Any]:
    """Keep a seeded random sample of `n` questions; paragraphs and articles left empty go.

    Used to mix training sets in fixed proportions (equal-step comparisons of data recipes).
    """
    places = [
        (a, p, q)
        for a, article in enumerate(data["data"])
        for p, paragraph in enumerate(article["paragraphs"])
        for q in range(len(paragraph["qas"]))
    ]
    if not 0 < n <= len(places):
        raise ConfigError(f"{source}: --questions must be in 1..{len(places)} (the file's "
                          f"questions), got {n}")
    keep = set(random.Random(seed).sample(places, n))
    articles = []
    for a, article in enumerate(data["data"]):
        paragraphs = []
        for p, paragraph in enumerate(article["paragraphs"]):
            qas = [qa for q, qa in enumerate(paragraph["qas"]) if (a, p, q) in keep]
            if qas:
                paragraphs.append({**paragraph, "qas": qas})
        if paragraphs:
            articles.append({**article, "paragraphs": paragraphs})
    return {**data, "data": articles}


def drop_paragraphs(data: dict[str, Any], contexts: set[str]) -> tuple[dict[str, Any], int, int]:
    """Remove the paragraphs whose context is in `contexts`; articles left empty go.

    The synth set was spoken from SQuAD train paragraphs. A model trained on spokenised SQuAD
    train has seen those paragraphs and their questions, so validating on the synth set without
    this step would score memory, not transfer to real ASR. Paragraphs are matched by their text,
    not by position, so any ordering or subset of SQuAD train works.

    Returns (data, paragraphs dropped, questions dropped).
    """
    articles, paragraphs_dropped, questions_dropped = [], 0, 0
    for article in data["data"]:
        kept = []
        for paragraph in article["paragraphs"]:
            if paragraph["context"] in contexts:
                paragraphs_dropped += 1
                questions_dropped += len(paragraph["qas"])
            else:
                kept.append(paragraph)
        if kept:
            articles.append({**article, "paragraphs": kept})
    return {**data, "data": articles}, paragraphs_dropped, questions_dropped


def _write_json(path: Path, obj: Any) -> None:
    """Write atomically, so an interrupted run leaves no half file; a failure is one line."""
    try:
        atomic_write_json(path, obj, indent=None, ensure_ascii=False)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write ({e.strerror})") from e


def _check_rate(rate: float | None) -> None:
    if rate is not None and not 0.0 <= rate < 1.0:
        raise ConfigError(f"--noise-rate {rate}: must be in [0, 1)")


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


def data_command(args: argparse.Namespace) -> int:
    """Run one ``data`` subcommand; print a summary; return the exit status (0)."""
    from spokenqa.corpus.align import convert_synth, load_synth_jsonl
    from spokenqa.corpus.noise import add_asr_noise
    from spokenqa.spoken import spokenize_squad, validate_squad

    started = time.perf_counter()
    src, dst = Path(args.input), Path(args.output)
    summary: dict[str, Any] = {"command": args.data_command, "input": str(src),
                               "output": str(dst)}
    if args.data_command in ("spokenize", "noise"):
        _check_rate(args.noise_rate)
        data = read_json(src)
        if args.data_command == "spokenize":
            data, sstats = spokenize_squad(data, source=str(src))
            s = sstats.to_dict()
            summary["spokenize"] = s
            print(f"spokenize: {s['articles']} articles, {s['paragraphs']} paragraphs, "
                  f"{s['questions']} questions -> {s['questions_kept']} kept "
                  f"({s['questions_dropped']} dropped); answers {s['answers']}: "
                  f"{s['answers_exact']} mapped exactly, {s['answers_searched']} found by "
                  f"search near their place, {s['answers_unmapped']} unmapped")
            for ex in s["examples"][:_SHOW]:
                print(f"  unmapped: {ex['place']} id {ex['id']}: {ex['answer']!r} -> "
                      f"{ex['spoken']!r} ({ex['reason']}); context: ...{ex['context']}...")
        if args.noise_rate is not None:
            data, nstats = add_asr_noise(data, args.noise_rate, args.seed, source=str(src))
            summary["noise"] = nstats.to_dict()
            _print_noise(summary["noise"])
    elif args.data_command == "convert-synth":
        records = load_synth_jsonl(src)
        data, astats = convert_synth(records, source=str(src))
        a = astats.to_dict()
        summary["convert_synth"] = a
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
    elif args.data_command == "holdout":
        data = read_json(src)
        validate_squad(data, str(src))
        contexts = {rec["context"] for rec in load_synth_jsonl(args.synth)}
        data, n_par, n_q = drop_paragraphs(data, contexts)
        summary["holdout"] = {"synth": args.synth, "synth_paragraphs": len(contexts),
                              "paragraphs_dropped": n_par, "questions_dropped": n_q}
        print(f"holdout: dropped {n_par} paragraphs ({n_q} questions) of the {len(contexts)} "
              f"in {args.synth}")
        if n_par < len(contexts):
            print(f"holdout: {len(contexts) - n_par} synth paragraphs were not found in {src}")
    elif args.data_command == "sample":
        data = read_json(src)
        validate_squad(data, str(src))  # the shape sample_questions walks
        data = sample_questions(data, args.questions, args.seed, source=str(src))
        summary["questions"] = args.questions
        print(f"sample: kept {args.questions} questions (seed {args.seed})")
    elif args.data_command == "negatives":
        from spokenqa.corpus.negatives import add_negatives

        if not 0.0 <= args.rate <= 1.0:
            raise ConfigError(f"--rate {args.rate}: must be in [0, 1]")
        data = read_json(src)
        validate_squad(data, str(src))
        data, nstats = add_negatives(data, args.rate, args.seed, source=str(src))
        summary["negatives"] = nstats.to_dict()
        print(f"negatives: {nstats.negatives} of {nstats.questions} questions copied onto a paragraph "
              f"without their answer (rate {args.rate}, seed {args.seed}); {nstats.no_candidate} drawn "
              "had no such paragraph in their article")
    else:  # pragma: no cover - argparse restricts the choices
        raise ConfigError(f"data {args.data_command}: unknown subcommand")
    _write_json(dst, data)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if getattr(args, "stats", None):
        _write_json(Path(args.stats), summary)
    print(f"wrote {dst} in {summary['seconds']} s")
    return 0
