"""Examples -> token windows (features) with start/end labels.

Long contexts are split into overlapping windows (`max_length`, `doc_stride`) with the fast
tokenizer's overflowing tokens, as Hugging Face `run_qa.py` does. Gold labels come from the
answer's character offsets through the offset mapping, never from matching sub-token ids (the
reference's method, which failed on 1.5% of answers). A training window that does not contain
the answer is labelled at [CLS] (index 0). Offsets of non-context tokens are stored as -1 so the
decoder can never return question text or special tokens.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import PreTrainedTokenizerBase

from spokenqa.config import RunConfig
from spokenqa.data import Example
from spokenqa.errors import ConfigError


@dataclass
class Features:
    """Windows as parallel lists; row i of every list describes window i."""

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray] | None
    example_index: list[int]  # which example (question) the window belongs to
    offsets: list[np.ndarray]  # (T, 2) character offsets into the context; -1 outside the context
    start_positions: list[int] = field(default_factory=list)  # training only
    end_positions: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.input_ids)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


@dataclass
class AlignStats:
    """How gold answers mapped onto tokens (replaces the reference's "span-match failure")."""

    answers: int = 0  # (question, answer) pairs looked at
    aligned: int = 0  # found whole inside at least one window
    not_in_any_window: int = 0  # longer than a window's context span: cut by every window
    no_tokens: int = 0  # the answer's characters map to no token (e.g. only dropped characters)
    questions_truncated: int = 0  # questions cut to max_question_tokens
    windows: int = 0
    negative_windows: int = 0  # training windows labelled at [CLS]
    negative_windows_dropped: int = 0
    no_answer_windows: int = 0  # windows of questions without an answer (is_impossible), at [CLS]
    span_tokens: list[int] = field(default_factory=list)  # gold span length in sub-word tokens

    def summary(self) -> dict[str, float | int]:
        out = {k: v for k, v in self.__dict__.items() if k != "span_tokens"}
        out["failure_rate"] = (self.answers - self.aligned) / self.answers if self.answers else 0.0
        return out


def _clip_questions(
    questions: list[str], tokenizer: PreTrainedTokenizerBase, max_tokens: int
) -> tuple[list[str], int]:
    """Cut questions longer than `max_tokens` sub-tokens at a token boundary.

    Without this, a very long question leaves no room for context and the tokenizer raises.
    """
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    clipped, cut = [], 0
    for question, offsets in zip(questions, enc["offset_mapping"]):
        if len(offsets) > max_tokens:
            question = question[: offsets[max_tokens - 1][1]]
            cut += 1
        clipped.append(question)
    return clipped, cut


def _tokenize(
    questions: list[str], contexts: list[str], tokenizer: PreTrainedTokenizerBase, cfg: RunConfig
):
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"model {cfg.model!r}: spokenqa needs a fast tokenizer (offset mapping)")
    if tokenizer.padding_side != "right":
        raise ConfigError(f"model {cfg.model!r}: tokenizers that pad on the left are not supported")
    return tokenizer(
        questions,
        contexts,
        truncation="only_second",
        max_length=cfg.max_length,
        stride=cfg.doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids="token_type_ids" in tokenizer.model_input_names,
        padding=False,
    )


def _context_offsets(enc, i: int) -> np.ndarray:
    """(T, 2) offsets of window i with -1 on every token outside the context."""
    offsets = np.asarray(enc["offset_mapping"][i], dtype=np.int32).reshape(-1, 2)
    is_context = np.asarray([s == 1 for s in enc.sequence_ids(i)])
    offsets[~is_context] = -1
    return offsets


def _locate(offsets: np.ndarray, start_char: int, end_char: int) -> tuple[int, int] | None:
    """Token indices of the answer [start_char, end_char) in one window, or None if not inside.

    Vectorised: the first context token ending after start_char, the last starting before end_char.
    """
    ctx = np.flatnonzero(offsets[:, 0] >= 0)
    if len(ctx) == 0:
        return None
    starts, ends = offsets[ctx, 0], offsets[ctx, 1]
    if starts[0] > start_char or ends[-1] < end_char:
        return None
    first = int(np.searchsorted(ends, start_char, side="right"))
    last = int(np.searchsorted(starts, end_char, side="left")) - 1
    if first > last:
        return None
    return int(ctx[first]), int(ctx[last])


def _answer_pairs(examples: list[Example], expand: bool) -> list[tuple[int, int | None]]:
    """(example index, answer index) training pairs: every answer entry, or the first only; a
    question without answers (SQuAD 2.0 `is_impossible`) is one pair with answer index None."""
    return [
        (e_idx, a_idx)
        for e_idx, example in enumerate(examples)
        for a_idx in (
            (range(len(example.answers)) if expand else range(1)) if example.answers else (None,)
        )
    ]


def prepare_train_features(
    examples: list[Example], tokenizer: PreTrainedTokenizerBase, cfg: RunConfig, chunk: int = 2048
) -> tuple[Features, AlignStats]:
    """Windows labelled with the gold start/end token, or [CLS] when the answer is outside (or
    the question has none: every window of an `is_impossible` question is kept, at [CLS]).

    Questions are tokenized `chunk` at a time: the tokenizer's Python lists for all of SQuAD at
    once (250k windows) take about 10 GB, which a training run would keep for its whole life.
    The windows are the same whatever the chunk size."""
    pairs = _answer_pairs(examples, cfg.expand_answers)
    stats = AlignStats(answers=sum(a is not None for _, a in pairs))
    rng = random.Random(cfg.seed)
    feats = Features([], [] if "token_type_ids" in tokenizer.model_input_names else None, [], [])
    found = np.zeros(len(pairs), dtype=bool)
    touched = np.zeros(len(pairs), dtype=bool)
    for lo in range(0, len(pairs), chunk):
        part = pairs[lo : lo + chunk]
        questions, cut = _clip_questions([examples[e].question for e, _ in part], tokenizer, cfg.max_question_tokens)
        stats.questions_truncated += cut
        enc = _tokenize(questions, [examples[e].context for e, _ in part], tokenizer, cfg)
        for i, local in enumerate(enc["overflow_to_sample_mapping"]):
            pair_idx = lo + local
            e_idx, a_idx = pairs[pair_idx]
            offsets = _context_offsets(enc, i)
            if a_idx is None:
                stats.no_answer_windows += 1
                span = (0, 0)
            else:
                answer = examples[e_idx].answers[a_idx]
                span = _locate(offsets, answer.start, answer.start + len(answer.text))
            if span is None:
                if _answer_overlaps(offsets, answer.start, answer.start + len(answer.text)):
                    touched[pair_idx] = True
                stats.negative_windows += 1
                if cfg.negative_window_keep < 1.0 and rng.random() >= cfg.negative_window_keep:
                    stats.negative_windows_dropped += 1
                    continue
                span = (0, 0)
            elif a_idx is not None and not found[pair_idx]:
                found[pair_idx] = True
                stats.span_tokens.append(span[1] - span[0] + 1)
            feats.input_ids.append(np.asarray(enc["input_ids"][i], dtype=np.int64))
            if feats.token_type_ids is not None:
                feats.token_type_ids.append(np.asarray(enc["token_type_ids"][i], dtype=np.int64))
            feats.example_index.append(e_idx)
            feats.offsets.append(offsets)
            feats.start_positions.append(span[0])
            feats.end_positions.append(span[1])
    stats.windows = len(feats)
    answerable = np.asarray([a is not None for _, a in pairs], dtype=bool)
    stats.aligned = int(found.sum())
    stats.not_in_any_window = int((~found & touched & answerable).sum())
    stats.no_tokens = int((~found & ~touched & answerable).sum())
    return feats, stats


def _answer_overlaps(offsets: np.ndarray, start_char: int, end_char: int) -> bool:
    ctx = offsets[offsets[:, 0] >= 0]
    return bool(len(ctx)) and bool(((ctx[:, 0] < end_char) & (ctx[:, 1] > start_char)).any())


def prepare_eval_features(
    examples: list[Example], tokenizer: PreTrainedTokenizerBase, cfg: RunConfig
) -> tuple[Features, AlignStats]:
    """Windows for prediction: every window of every question, offsets kept for decoding.

    The stats measure how the gold answers of each question fall on tokens (for the report).
    """
    stats = AlignStats(answers=sum(len(e.answers) for e in examples))
    questions, stats.questions_truncated = _clip_questions(
        [e.question for e in examples], tokenizer, cfg.max_question_tokens
    )
    enc = _tokenize(questions, [e.context for e in examples], tokenizer, cfg)
    feats = Features([], [] if "token_type_ids" in enc else None, [], [])
    found: set[tuple[int, int]] = set()
    for i, e_idx in enumerate(enc["overflow_to_sample_mapping"]):
        offsets = _context_offsets(enc, i)
        for a_idx, answer in enumerate(examples[e_idx].answers):
            if (e_idx, a_idx) in found:
                continue
            span = _locate(offsets, answer.start, answer.start + len(answer.text))
            if span is not None:
                found.add((e_idx, a_idx))
                stats.span_tokens.append(span[1] - span[0] + 1)
        feats.input_ids.append(np.asarray(enc["input_ids"][i], dtype=np.int64))
        if feats.token_type_ids is not None:
            feats.token_type_ids.append(np.asarray(enc["token_type_ids"][i], dtype=np.int64))
        feats.example_index.append(int(e_idx))
        feats.offsets.append(offsets)
    stats.windows = len(feats)
    stats.aligned = len(found)
    stats.not_in_any_window = stats.answers - stats.aligned
    return feats, stats


def collate(feats: Features, indices: list[int], pad_id: int, labels: bool) -> dict[str, torch.Tensor]:
    """Pad the windows `indices` to the longest of them (dynamic padding)."""
    width = max(len(feats.input_ids[i]) for i in indices)
    input_ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(indices), width), dtype=torch.long)
    token_type_ids = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(feats.input_ids[i])
        input_ids[row, :n] = torch.from_numpy(feats.input_ids[i])
        attention_mask[row, :n] = 1
        if feats.token_type_ids is not None:
            token_type_ids[row, :n] = torch.from_numpy(feats.token_type_ids[i])
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if feats.token_type_ids is not None:
        batch["token_type_ids"] = token_type_ids
    if labels:
        batch["start_positions"] = torch.tensor([feats.start_positions[i] for i in indices])
        batch["end_positions"] = torch.tensor([feats.end_positions[i] for i in indices])
    return batch


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int | None, group: bool
) -> list[list[int]]:
    """Batches of window indices.

    Training (`seed` given): shuffle, then sort within mega-batches of 50 batches so each batch
    holds windows of similar length (little padding) while the order stays random. Evaluation
    (`seed=None`): sorted by length, so predictions do not depend on anything but the data.
    """
    order = list(range(len(lengths)))
    if seed is None:
        if group:
            order.sort(key=lambda i: -lengths[i])
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng = random.Random(seed)
    rng.shuffle(order)
    if group:
        mega = batch_size * 50
        order = [
            i
            for m in range(0, len(order), mega)
            for i in sorted(order[m : m + mega], key=lambda i: -lengths[i])
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if group:
        rng.shuffle(batches)
    return batches
