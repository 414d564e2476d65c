"""Fitting an archive calibration on validation data (`spokenqa index calibrate`): the retrieval
mix, the two logistic regressions of `spokenqa.archive.calibrate`, and the threshold.

The data is a SQuAD-format file of questions the reader was not trained on (never the test set).
Its articles are dealt in turn to half A and half B, and within each half in turn to a fit part
and a held-out part. One archive holds half A's paragraphs:

1. the hybrid fusion (rrf or score) and its dense weight are chosen from a small grid by recall@5
   of A's questions (their paragraphs are in the archive);
2. A's and B's questions are asked of it (B's answers are not there: the refusal case), each read
   over its first `passages` passages; every passage's best span is a candidate, labelled right
   when its official F1 against a gold answer is at least 0.5;
3. on the fit part: the candidate model, then the answer model on each question's top answer,
   then the threshold, the highest that still answers `answered` (0.9) of A's questions;
4. on the held-out part: the expected calibration error (10 bins) of the top answers'
   probabilities, refusals of B's questions and answers of A's at the threshold, and the
   risk-coverage curve.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.archive.calibrate import (
    ANSWER_FEATURES,
    CANDIDATE_FEATURES,
    RIGHT_F1,
    Calibration,
    expected_calibration_error,
    fit_logistic,
    threshold_for,
    today,
    uncalibrated,
    weights_sha256,
)
from spokenqa.archive.evaluate import Asked, ask_all, own_paragraph, right
from spokenqa.archive.read import ArchiveQA, ranked
from spokenqa.archive.retrieve import (
    DEPTH,
    bm25_ranking,
    fuse,
    question_terms,
    question_vector,
    spoken_question,
)
from spokenqa.data import Example
from spokenqa.errors import DataError, notice

GRID = tuple((fusion, weight) for fusion in ("rrf", "score") for weight in (0.3, 0.5, 0.7))


def split_articles(data: dict[str, Any]) -> dict[str, list[int]]:
    """Article indices of the four parts: A-fit, A-held, B-fit, B-held (dealt in turn)."""
    parts: dict[str, list[int]] = {"A-fit": [], "B-fit": [], "A-held": [], "B-held": []}
    for i in range(len(data["data"])):
        parts[f"{'AB'[i % 2]}-{('fit', 'held')[(i // 2) % 2]}"].append(i)
    return parts


def choose_fusion(archive: ArchiveQA, examples: Sequence[Example]) -> tuple[list[dict], str, float]:
    """recall@5 of every (fusion, weight) of GRID; the best (ties: the first)."""
    store = archive.store
    rankings = []
    for e in examples:
        spoken = spoken_question(e.question)
        terms = question_terms(e.question, spoken)
        bm25 = bm25_ranking(store, terms, DEPTH) if terms else []
        dense = store.nearest(question_vector(store, spoken or e.question), DEPTH) if terms else []
        rankings.append((bm25, dense))
    rows = []
    for fusion, weight in GRID:
        found = 0
        for e, (bm25, dense) in zip(examples, rankings, strict=True):
            fused = fuse(bm25, dense, weight, fusion)
            best = [pid for pid, _ in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
            found += own_paragraph(e, store.passages(best).values())
        rows.append({"fusion": fusion, "weight": weight, "recall@5": found / len(examples)})
    best = max(rows, key=lambda r: r["recall@5"])
    return rows, best["fusion"], best["weight"]


def top_answers(cal: Calibration, asked: Sequence[Asked]) -> tuple[list[dict[str, float] | None], list[str]]:
    """Each question's top answer: its answer-model features (None: nothing read) and text."""
    rows, texts = [], []
    for a in asked:
        best = ranked(cal, a.candidates, 1) if a.candidates else []
        rows.append(best[0][1] if best else None)
        texts.append(best[0][0].text if best else "")
    return rows, texts


def top_probabilities(cal: Calibration, asked: Sequence[Asked]) -> tuple[np.ndarray, np.ndarray]:
    """(P(right) of each question's top answer (0 where none), whether it is right)."""
    rows, texts = top_answers(cal, asked)
    prob = np.array([cal.probabilities([r])[0] if r is not None else 0.0 for r in rows])
    ok = np.array([bool(t) and right(t, a.example)[1] >= RIGHT_F1 for t, a in zip(texts, asked, strict=True)])
    return prob, ok


def fit(asked: dict[str, list[Asked]], answered: float = 0.9) -> Calibration:
    """The two models and the threshold from the fit parts (`asked` by part, see `split_articles`)."""
    start = uncalibrated()
    fit_part = asked["A-fit"] + asked["B-fit"]
    cands = [c for a in fit_part for c in a.candidates]
    x = np.array([[c.row[f] for f in CANDIDATE_FEATURES] for c in cands])
    y = np.array([right(c.text, a.example)[1] >= RIGHT_F1 for a in fit_part for c in a.candidates])
    start.candidate = fit_logistic(CANDIDATE_FEATURES, x, y)
    rows, texts = top_answers(start, fit_part)
    keep = [i for i, r in enumerate(rows) if r is not None]
    x = np.array([[rows[i][f] for f in ANSWER_FEATURES] for i in keep])
    y = np.array([right(texts[i], fit_part[i].example)[1] >= RIGHT_F1 for i in keep])
    start.answer = fit_logistic(ANSWER_FEATURES, x, y)
    prob, _ = top_probabilities(start, asked["A-fit"])
    start.threshold = threshold_for(prob, answered)
    return start


def held_out_report(cal: Calibration, asked: dict[str, list[Asked]], bins: int = 10) -> dict[str, Any]:
    """ECE, refusals and the risk-coverage curve on the held-out parts."""
    prob_a, ok_a = top_probabilities(cal, asked["A-held"])
    prob_b, ok_b = top_probabilities(cal, asked["B-held"])
    prob, ok = np.concatenate([prob_a, prob_b]), np.concatenate([ok_a, ok_b])
    order = np.argsort(-prob, kind="stable")
    covered = np.arange(1, len(prob) + 1)
    risk = 1 - np.cumsum(ok[order]) / covered
    return {
        "questions": {"answerable": len(prob_a), "not_in_archive": len(prob_b)},
        "ece": expected_calibration_error(prob, ok, bins),
        "ece_answerable_only": expected_calibration_error(prob_a, ok_a, bins),
        "reliability": reliability(prob, ok, bins),
        "right_rate": float(ok.mean()),
        "mean_probability": float(prob.mean()),
        "answerable_answered": float((prob_a >= cal.threshold).mean()),
        "not_in_archive_refused": float((prob_b < cal.threshold).mean()),
        "answered_right_rate": float(ok[prob >= cal.threshold].mean()) if (prob >= cal.threshold).any() else None,
        "risk_coverage": {"coverage": (covered / len(prob)).round(4).tolist(), "risk": risk.round(4).tolist(),
                          "threshold_coverage": float((prob >= cal.threshold).mean())},
    }


def plot(report: dict[str, Any], path: str | os.PathLike[str], title: str) -> None:
    """Risk-coverage (with the threshold's coverage marked) and reliability (accuracy against
    probability, 10 bins) of the held-out top answers, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # files only
    import matplotlib.pyplot as plt

    rc = report["risk_coverage"]
    fig, (left, right_ax) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.plot(rc["coverage"], rc["risk"], color="tab:blue")
    left.axvline(rc["threshold_coverage"], color="tab:red", ls="--", label="threshold")
    left.set(xlabel="coverage (share of questions answered)", ylabel="risk (share of answers wrong)",
             xlim=(0, 1), ylim=(0, 1), title="risk-coverage")
    left.legend(loc="upper left")
    bins = report["reliability"]
    right_ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    right_ax.bar([b["mean_probability"] for b in bins], [b["right_rate"] for b in bins], width=0.08,
                 alpha=0.7, color="tab:blue")
    right_ax.set(xlabel="probability (bin mean)", ylabel="share right", xlim=(0, 1), ylim=(0, 1),
                 title=f"reliability, ECE {report['ece']:.3f}")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability(prob: np.ndarray, ok: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    which = np.minimum((prob * bins).astype(int), bins - 1)
    return [{"bin": b, "answers": int((which == b).sum()), "mean_probability": float(prob[which == b].mean()),
             "right_rate": float(ok[which == b].mean())} for b in range(bins) if (which == b).any()]


def calibrate(data: str | os.PathLike[str], qa: Any, work: str | os.PathLike[str], passages: int = 5,
              answered: float = 0.9, max_questions: int | None = None, batch: int = 4,
              progress: bool = True) -> tuple[Calibration, dict[str, Any]]:
    """Everything in the module docstring: returns the calibration and the held-out report.
    `work`: a folder for half A's file and archive (kept: a rerun reuses the archive).
    `max_questions`: at most this many questions of each part (None: all)."""
    from spokenqa.archive import index
    from spokenqa.data import load_squad
    from spokenqa.files import atomic_write_json, read_json

    raw = read_json(data)
    parts = split_articles(raw)
    if not all(parts.values()):
        raise DataError(f"{data}: needs at least 4 articles (two halves, each fit and held out)")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    half_a = work / "half_a.json"
    atomic_write_json(half_a, {"version": raw.get("version", "1.1"),
                               "data": [raw["data"][i] for i in sorted(parts["A-fit"] + parts["A-held"])]})
    index.build(work / "half_a.sqlite", [half_a], progress=progress, threads=1)
    paragraphs = sum(len(raw["data"][i]["paragraphs"]) for i in parts["A-fit"] + parts["A-held"])
    if index.stats(work / "half_a.sqlite").documents != paragraphs:
        raise DataError(f"{work / 'half_a.sqlite'}: holds other documents than half A's {paragraphs} "
                        "paragraphs; give an empty --work folder")
    examples, _ = load_squad(data, qa.cfg.lowercase)
    title_part = {raw["data"][i].get("title", ""): name for name, ids in parts.items() for i in ids}
    by_part: dict[str, list[Example]] = {name: [] for name in parts}
    for e in examples:
        by_part[title_part[e.title]].append(e)
    if max_questions:
        by_part = {name: es[:max_questions] for name, es in by_part.items()}
    with ArchiveQA.open(work / "half_a.sqlite", qa, uncalibrated()) as archive:
        grid, fusion, weight = choose_fusion(archive, by_part["A-fit"] + by_part["A-held"])
        notice(f"fusion {fusion}, weight {weight}: recall@5 {max(r['recall@5'] for r in grid):.3f}")
        asked = {name: ask_all(archive, es, passages, "hybrid", weight, fusion, depth=passages, batch=batch,
                               progress=progress) for name, es in by_part.items()}
        cal = fit(asked, answered)
    cal.fusion, cal.weight, cal.passages = fusion, weight, passages
    report = held_out_report(cal, asked)
    folder = qa.folder
    cal.reader = {"name": Path(folder).name if folder else None,
                  "sha256": weights_sha256(folder) if folder else None,
                  "scores": json.loads((Path(folder) / "spokenqa.json").read_text()).get("checkpoint", {})
                  .get("scores") if folder else None}
    cal.fit = {"data": str(Path(data).resolve()), "date": today(), "label": f"official F1 >= {RIGHT_F1}",
               "split": "articles dealt in turn to halves A/B and within each to fit/held-out parts; "
                        "archive = half A",
               "questions": {name: len(es) for name, es in by_part.items()}, "answered_target": answered,
               "fusion_grid": grid, "held_out": {k: v for k, v in report.items() if k not in ("risk_coverage", "reliability")}}
    return cal, report


__all__ = ["GRID", "calibrate", "choose_fusion", "fit", "held_out_report", "plot", "reliability", "split_articles",
           "top_answers", "top_probabilities"]
