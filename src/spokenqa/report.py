"""Figures (PNG) and the human-readable `report.md` of a run, from data and metrics only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from spokenqa.config import RunConfig
from spokenqa.data import Example, word_lengths
from spokenqa.features import AlignStats


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def hist_figure(values: list[int], title: str, xlabel: str, max_bins: int = 50) -> Figure:
    """A histogram of counts (words, tokens): one bar per integer value where they fit, so no
    bar straddles two values, and integer ticks on both axes (a count has no fractions)."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if values:
        lo, hi = min(values), max(values)
        bins = [v - 0.5 for v in range(lo, hi + 2)] if hi - lo < max_bins else max_bins
        ax.hist(values, bins=bins, color="#4c72b0", edgecolor="white")  # neighbouring bars stay apart
    ax.set(title=f"{title} (n={len(values)})", xlabel=xlabel, ylabel="count")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def _hist(path: Path, values: list[int], title: str, xlabel: str) -> None:
    _save(hist_figure(values, title, xlabel), path)


def write_length_figures(folder: Path, examples: list[Example], split: str) -> None:
    """Histograms of context, question and answer lengths in words."""
    for kind, values in word_lengths(examples).items():
        _hist(folder / f"{split}_{kind}_words.png", values, f"{split}: {kind} length", "words")


def write_data_figures(
    out: Path,
    train_examples: list[Example],
    eval_examples: list[Example],
    align: AlignStats,
    eval_span_tokens: list[int] | None,
) -> None:
    folder = Path(out) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    write_length_figures(folder, train_examples, "train")
    _hist(folder / "train_span_tokens.png", align.span_tokens, "train: gold span length", "sub-word tokens")
    if eval_examples:
        write_length_figures(folder, eval_examples, "eval")
    if eval_span_tokens is not None:
        _hist(folder / "eval_span_tokens.png", eval_span_tokens, "validation: gold span length", "sub-word tokens")


# Each series of a panel gets its own marker and line style as well as its colour, so two series
# with equal values (official EM and reference EM x100 often are) stay visible, and print in grey.
_STYLES = [("o", "-"), ("s", "--"), ("^", ":"), ("D", "-.")]

Panel = tuple[str, dict[str, list[float | None]]]  # (y-axis label, {series label: values})


def curve_figure(x: list[float], panels: list[Panel], title: str) -> Figure:
    """Curves over epochs, one panel per metric family (side by side, same y scale)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.5), sharey=len(panels) > 1,
                             squeeze=False)
    for ax, (ylabel, series) in zip(axes[0], panels):
        for (label, values), (marker, style) in zip(series.items(), _STYLES):
            pts = [(e, v) for e, v in zip(x, values) if v is not None]
            if pts:
                ax.plot(*zip(*pts), marker=marker, linestyle=style, label=label, markerfacecolor="none")
        ax.set(xlabel="epoch", ylabel=ylabel)
        ax.tick_params(labelleft=True)  # shared scale, but each panel readable on its own
        if all(float(e).is_integer() for e in x):  # whole epochs: no 0.25-epoch ticks
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_lines():
            ax.legend()
    fig.suptitle(title)
    return fig


def _curve(path: Path, x: list[float], panels: list[Panel], title: str) -> None:
    _save(curve_figure(x, panels, title), path)


def _score_panels(scores: list[dict]) -> list[Panel]:
    """EM/F1 of both metric families: official in percent, reference as fraction x100."""
    def get(family: str, key: str, scale: float = 1.0) -> list[float | None]:
        return [None if s.get(family, {}).get(key) is None else scale * s[family][key] for s in scores]

    return [
        ("official (SQuAD v1.1), %", {"official EM": get("official", "exact_match"),
                                      "official F1": get("official", "f1")}),
        ("reference (per answer entry) x100", {"reference EM": get("reference", "em", 100.0),
                                               "reference F1": get("reference", "f1", 100.0)}),
    ]


def write_training_figures(
    out: Path, history: list[dict[str, Any]], curve: list[dict[str, Any]] | None = None
) -> None:
    """Curves of train loss, val EM/F1 (both families) and val WER per epoch; with `curve`
    (mid-epoch evaluations) also `curve.png`, the validation scores at every evaluated step."""
    folder = Path(out) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    epochs = [h["epoch"] for h in history]
    scored = [h.get("scores") or {} for h in history]
    _curve(folder / "train_loss.png", epochs,
           [("loss (mean per training window)", {"train loss": [h.get("train_loss") for h in history]})],
           "training loss")
    _curve(folder / "val_em_f1.png", epochs, _score_panels(scored), "validation EM and F1")
    _curve(folder / "val_wer.png", epochs,
           [("WER (fraction; may exceed 1)", {"reference WER": [s.get("reference", {}).get("wer") for s in scored]})],
           "validation WER")
    if curve:
        points = sorted([(c["epoch"], c["scores"]) for c in curve if c.get("scores")]
                        + [(h["epoch"], h["scores"]) for h in history if h.get("scores")],
                        key=lambda p: p[0])
        _curve(folder / "curve.png", [e for e, _ in points], _score_panels([s for _, s in points]),
               "validation scores during training")


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def epoch_table(history: list[dict[str, Any]]) -> str:
    rows = [
        "| epoch | loss | start acc | end acc | official EM | official F1 | ref EM | ref F1 | ref WER | eval q/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h in history:
        o = (h.get("scores") or {}).get("official", {})
        r = (h.get("scores") or {}).get("reference", {})
        rows.append(
            f"| {h['epoch']} | {_fmt(h.get('train_loss'), 3)} | {_fmt(h.get('start_acc'), 3)} | "
            f"{_fmt(h.get('end_acc'), 3)} | {_fmt(o.get('exact_match'), 2)} | {_fmt(o.get('f1'), 2)} | "
            f"{_fmt(r.get('em'))} | {_fmt(r.get('f1'))} | {_fmt(r.get('wer'))} | "
            f"{_fmt(h.get('eval_questions_per_s'), 1)} |"
        )
    return "\n".join(rows)


def data_section(data_stats: dict[str, Any]) -> str:
    lines = []
    # the same file may be both (the demo trains and evaluates on the sample): each row says which
    files = [("train", s) for s in data_stats.get("train", [])]
    files += [("eval", data_stats["eval"])] if data_stats.get("eval") else []
    if files:
        lines += [
            "| split | file | articles | paragraphs | questions | answers | repaired | skipped | questions dropped |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for split, s in files:
            lines.append(
                f"| {split} | `{s['file']}` | {s['articles']} | {s['paragraphs']} | {s['questions']} | {s['answers']} | "
                f"{s['answers_repaired']} | {s['answers_skipped']} | {s['questions_without_answers']} |"
            )
        notes = [n for _, s in files for n in s.get("examples", [])]
        if notes:
            lines += ["", "Repairs and skips (first few):", *[f"- {n}" for n in notes[:10]]]
    for split in ("train_alignment", "eval_alignment"):
        a = data_stats.get(split)
        if a:
            lines += [
                "",
                (f"**{split.replace('_', ' ')}**: {a['aligned']} of {a['answers']} answers aligned to tokens "
                 f"(failure rate {100 * a['failure_rate']:.2f}%: {a['not_in_any_window']} not inside any window, "
                 f"{a.get('no_tokens', 0)} with no tokens); {a['windows']} windows, "
                 f"{a['negative_windows']} without the answer ({a['negative_windows_dropped']} dropped); "
                 f"{a['questions_truncated']} questions cut to the question-token limit."),
            ]
    return "\n".join(lines)


def curve_table(curve: list[dict[str, Any]]) -> str:
    """The mid-epoch evaluations (`eval_every`) as a Markdown table."""
    rows = ["| step | epoch | loss so far | official EM | official F1 | ref EM | ref F1 | ref WER |",
            "|---|---|---|---|---|---|---|---|"]
    for c in curve:
        o, r = (c.get("scores") or {}).get("official", {}), (c.get("scores") or {}).get("reference", {})
        rows.append(f"| {c['step']} | {c['epoch']:.2f} | {_fmt(c.get('train_loss_epoch_so_far'), 3)} | "
                    f"{_fmt(o.get('exact_match'), 2)} | {_fmt(o.get('f1'), 2)} | {_fmt(r.get('em'))} | "
                    f"{_fmt(r.get('f1'))} | {_fmt(r.get('wer'))} |")
    return "\n".join(rows)


def write_report(
    out: Path, cfg: RunConfig, summary: dict[str, Any], history: list[dict[str, Any]], data_stats: dict[str, Any],
    curve: list[dict[str, Any]] | None = None,
) -> None:
    out = Path(out)
    mid = f"\n\n### Between epochs (every {cfg.eval_every} steps)\n\n{curve_table(curve)}" if curve else ""
    # how the run went first (loss, scores, the curve), then what the data looked like
    first = ("train_loss.png", "val_em_f1.png", "val_wer.png", "curve.png")
    figures = sorted((p.name for p in (out / "figures").glob("*.png")),
                     key=lambda name: (first.index(name) if name in first else len(first), name))
    settings = json.dumps(cfg.to_dict(), indent=2)
    text = f"""# spokenqa run report

Status: **{summary['status']}**{f" ({summary['message']})" if summary.get('message') else ''}.
Preset `{cfg.preset}`, model `{cfg.model}`, head `{cfg.head}`, loss `{cfg.loss}`, decoder `{cfg.decoder}`,
precision `{'fp32' if summary['precision'] == 'no' else summary['precision']}`, {summary['processes']} process(es).
{summary['train_examples']} training questions -> {summary['train_windows']} windows;
{summary['eval_questions']} evaluation questions; {summary['steps']} optimiser steps;
wall time {summary['wall_seconds']:.0f} s. Best epoch by `{cfg.select_metric}`: {(summary.get('best') or {}).get('epoch', '-')}.

## Metrics per epoch

Official = SQuAD v1.1 script (percent, max over a question's gold answers). Reference = the
reference study's per-answer-entry EM/F1/WER (fractions; WER from jiwer, may exceed 1).

{epoch_table(history)}{mid}

## Data

{data_section(data_stats)}

## Figures

{chr(10).join(f"![{name}](figures/{name})" for name in figures)}

## Settings

```json
{settings}
```
"""
    (out / "report.md").write_text(text)


def write_stats(path: Path, cfg: RunConfig, out: Path) -> dict[str, Any]:
    """`spokenqa stats`: load and validate a file, align its answers, write histograms + stats.json."""
    from collections import Counter

    from spokenqa.data import load_squad
    from spokenqa.features import prepare_eval_features
    from spokenqa.model import build_tokenizer

    examples, stats = load_squad(path, cfg.lowercase)
    _, align = prepare_eval_features(examples, build_tokenizer(cfg), cfg)
    out = Path(out)
    folder = out / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    write_length_figures(folder, examples, "data")
    _hist(folder / "data_span_tokens.png", align.span_tokens, "gold span length", "sub-word tokens")
    lengths = word_lengths(examples)
    distinct = Counter(len({a.text for a in e.answers}) for e in examples)
    summary = {
        "data": stats.to_dict(),
        "alignment": align.summary(),
        "mean_words": {k: (sum(v) / len(v) if v else 0.0) for k, v in lengths.items()},
        "questions_with_several_distinct_answers": sum(n for k, n in distinct.items() if k > 1),
    }
    (out / "stats.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
