"""The score of an archive answer as a calibrated probability that it is right, and the threshold
below which spokenqa says "not in this archive" (`Calibration`, fit by `spokenqa index calibrate`).

Two small logistic regressions, fit on validation data (never the test set):

1. **candidate** (ranks answers across passages): each passage's best spans, described by the
   reader's span score (log of its pooled p(start) x p(end)), the passage's no-answer score
   (log p([CLS]) x p([CLS]), `spokenqa.decode.no_answer_scores`), their difference `margin`
   (the reader's "span against no answer", which compares across passages), the span's share of
   its passage's n-best probability, and the passage's retrieval rank and dense similarity.
   Its log-odds, `score`, ranks all candidates of a question.
2. **answer** (the probability shown): the question's answers ranked by `score`, each described
   by its `score`, its `gap` to the best other answer text, and `agree`, the share of the read
   passages whose best span has the same (normalised) text. Fit on the top answer of each
   question, so the probability is calibrated for what a user is shown, not for the average
   candidate (the top one is selected for a high score and would be over-confident).

A label is 1 when the answer's official F1 against a gold answer is at least 0.5 (`RIGHT_F1`).
The file (`archive_calibration.json`, kept in the reader's checkpoint folder, so it travels with
the model) also holds the threshold, the retrieval settings chosen on the same data, the reader
it was fit for (name and SHA-256 of its weights), the data and the date.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.errors import ConfigError, DataError

FORMAT = "spokenqa-archive-calibration"
VERSION = 1
FILENAME = "archive_calibration.json"  # in the checkpoint folder, beside model.safetensors
CANDIDATE_FEATURES = ("margin", "span", "share", "log_rank", "dense")  # null = span - margin: left out
ANSWER_FEATURES = ("score", "gap", "agree")
RIGHT_F1 = 0.5  # an answer is "right" when its official F1 against a gold answer is at least this
NO_RIVAL_GAP = 10.0  # `gap` of an answer with no other answer text to compare with


@dataclass
class Logistic:
    """p = sigmoid(coef . (x - mean) / scale + intercept), over named features."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def logit(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.scale)
        return z @ np.asarray(self.coef) + self.intercept

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return np.array([[float(r[f]) for f in self.features] for r in rows], dtype=np.float64).reshape(
            len(rows), len(self.features))


def fit_logistic(features: Sequence[str], x: np.ndarray, y: np.ndarray, l2: float = 1e-2,
                 steps: int = 50) -> Logistic:
    """Maximum-likelihood logistic regression with a small L2 penalty on the coefficients (not
    the intercept), by Newton's method on standardised features."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(y) == 0 or y.min() == y.max():
        raise DataError("cannot fit a calibration: the labels are all the same (need right and wrong answers)")
    mean, scale = x.mean(0), x.std(0)
    scale[scale == 0] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2 * len(y))
    penalty[-1] = 0.0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (p - y) + penalty * w
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Logistic(list(features), mean.tolist(), scale.tolist(), w[:-1].tolist(), float(w[-1]))


def sigmoid(x: np.ndarray | float) -> np.ndarray:
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def candidate_row(span: float, null: float, share: float, rank: int, dense: float | None) -> dict[str, float]:
    """The candidate features of one span of one passage (see the module docstring)."""
    return {"margin": span - null, "span": span, "null": null, "share": share,
            "log_rank": math.log(rank), "dense": 0.0 if dense is None else dense}


def expected_calibration_error(prob: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE: |accuracy - mean probability| per equal-width probability bin, weighted by the bin's
    share of the answers."""
    prob, right = np.asarray(prob, dtype=np.float64), np.asarray(right, dtype=np.float64)
    which = np.minimum((prob * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(right[inside].mean() - prob[inside].mean())
    return float(total)


def threshold_for(prob_answerable: np.ndarray, answered: float) -> float:
    """The highest threshold that still answers at least `answered` of the questions whose
    answer is in the archive (their top answers' probabilities given)."""
    prob = np.sort(np.asarray(prob_answerable, dtype=np.float64))[::-1]
    if len(prob) == 0:
        raise DataError("cannot choose a threshold: no answerable questions")
    keep = max(1, math.ceil(answered * len(prob)))
    return float(prob[keep - 1])


def weights_sha256(folder: str | Path) -> str:
    """SHA-256 of a checkpoint's model.safetensors: which reader a calibration was fit for."""
    from spokenqa.files import file_sha256

    return file_sha256(Path(folder) / "model.safetensors")


@dataclass
class Calibration:
    """What `ArchiveQA` needs to rank, score and refuse (see the module docstring)."""

    candidate: Logistic
    answer: Logistic
    threshold: float
    mode: str = "hybrid"
    fusion: str = "rrf"
    weight: float = 0.5
    passages: int = 5
    reader: dict[str, Any] = field(default_factory=dict)  # name, sha256 of model.safetensors
    fit: dict[str, Any] = field(default_factory=dict)  # data, date, counts, held-out ECE, grid
    path: str | None = None  # the file it was read from (not saved)

    def scores(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """The candidate log-odds that rank a question's answers."""
        return self.candidate.logit(self.candidate.matrix(rows)) if rows else np.empty(0)

    def probabilities(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        """P(right) of answers described by `ANSWER_FEATURES`."""
        return sigmoid(self.answer.logit(self.answer.matrix(rows))) if rows else np.empty(0)

    def to_dict(self) -> dict[str, Any]:
        out = {"format": FORMAT, "version": VERSION, **asdict(self)}
        out.pop("path")
        return out

    def save(self, path: str | Path) -> None:
        from spokenqa.files import atomic_write_json

        try:
            atomic_write_json(Path(path), self.to_dict(), indent=2)
        except OSError as e:
            raise ConfigError(f"{path}: cannot write the calibration ({e.strerror})") from e

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        from spokenqa.files import read_json

        data = read_json(Path(path))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"{path}: not a spokenqa archive calibration (no format {FORMAT!r})")
        if data.get("version") != VERSION:
            raise DataError(f"{path}: calibration version {data.get('version')}; this spokenqa reads {VERSION}")
        try:
            return cls(Logistic(**data["candidate"]), Logistic(**data["answer"]), float(data["threshold"]),
                       data["mode"], data["fusion"], float(data["weight"]), int(data["passages"]),
                       data.get("reader", {}), data.get("fit", {}), str(path))
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"{path}: a malformed calibration ({type(e).__name__}: {e})") from None


def uncalibrated() -> Calibration:
    """For a reader without a calibration file: the margin alone ranks, and the shown number is
    sigmoid(score) (not a calibrated probability), threshold 0.5."""
    n_cand, n_ans = len(CANDIDATE_FEATURES), len(ANSWER_FEATURES)
    candidate = Logistic(list(CANDIDATE_FEATURES), [0.0] * n_cand, [1.0] * n_cand,
                         [1.0] + [0.0] * (n_cand - 1), 0.0)
    answer = Logistic(list(ANSWER_FEATURES), [0.0] * n_ans, [1.0] * n_ans, [1.0] + [0.0] * (n_ans - 1), 0.0)
    return Calibration(candidate, answer, 0.5, fit={"note": "uncalibrated: no calibration file"})


def today() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def load_for_reader(folder: str | Path | None, calibration: str | Path | None = None) -> Calibration | None:
    """`calibration` (a file), or the reader's own `FILENAME` in its checkpoint `folder`; None
    when neither exists. A file fit for other weights is said on stderr (its numbers would not
    mean what they say: refit with `spokenqa index calibrate`)."""
    from spokenqa.errors import notice

    if calibration is not None:
        path = Path(calibration)
        if not path.is_file():
            raise ConfigError(f"{path}: no such calibration file")
    elif folder is not None and (Path(folder) / FILENAME).is_file():
        path = Path(folder) / FILENAME
    else:
        return None
    cal = Calibration.load(path)
    weights = Path(folder) / "model.safetensors" if folder is not None else None
    if weights is not None and weights.is_file() and cal.reader.get("sha256") not in (None, weights_sha256(folder)):
        notice(f"{path} was fit for other weights than {folder}'s: its probabilities and threshold "
               "may be off; refit with `spokenqa index calibrate`")
    return cal


__all__ = ["ANSWER_FEATURES", "CANDIDATE_FEATURES", "FILENAME", "RIGHT_F1", "Calibration", "Logistic",
           "candidate_row", "expected_calibration_error", "fit_logistic", "load_for_reader", "sigmoid",
           "threshold_for", "uncalibrated", "weights_sha256"]
