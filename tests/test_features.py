import itertools

import numpy as np

from spokenqa.config import preset
from spokenqa.data import Answer, Example
from spokenqa.features import (
    collate,
    length_grouped_batches,
    prepare_eval_features,
    prepare_train_features,
)

CFG = preset("cpu").replace(max_length=40, doc_stride=10, max_question_tokens=8)


def make(context: str, answer: str, occurrence: int = 0, qid: str = "q", question: str = "what is it") -> Example:
    start = -1
    for _ in range(occurrence + 1):
        start = context.index(answer, start + 1)
    return Example(qid, "t", context, question, (Answer(answer, start),))


def labelled_texts(feats, examples):
    """The text each training window's label points at ('' for [CLS])."""
    out = []
    for i, (s, e) in enumerate(zip(feats.start_positions, feats.end_positions)):
        if s == 0 and e == 0:
            out.append("")
            continue
        ctx = examples[feats.example_index[i]].context
        out.append(ctx[feats.offsets[i][s, 0] : feats.offsets[i][e, 1]])
    return out


def long_context(n: int = 60) -> str:
    return " ".join(f"word{i}" for i in range(n))


def test_windows_overlap_and_cover_the_context(tokenizer):
    ctx = long_context()
    feats, _ = prepare_eval_features([make(ctx, "word5")], tokenizer, CFG)
    assert len(feats) > 2
    assert all(len(ids) <= CFG.max_length for ids in feats.input_ids)
    spans = [[tuple(x) for x in offsets[offsets[:, 0] >= 0].tolist()] for offsets in feats.offsets]
    for a, b in itertools.pairwise(spans):
        # consecutive windows share exactly doc_stride context tokens (the Hugging Face meaning
        # of stride), in document order: the tail of one is the head of the next
        assert a[-CFG.doc_stride:] == b[:CFG.doc_stride], (a[-CFG.doc_stride:], b[:CFG.doc_stride])
        assert b[CFG.doc_stride][0] > a[-1][0]
    covered = {span for window in spans for span in window}
    assert spans[0][0][0] == 0 and max(e for _, e in covered) == len(ctx)


def test_answer_at_the_very_end_of_a_long_context(tokenizer):
    ctx = long_context()
    ex = make(ctx, "word59")
    feats, stats = prepare_train_features([ex], tokenizer, CFG)
    texts = labelled_texts(feats, [ex])
    assert texts[-1] == "word59"
    assert all(t in ("", "word59") for t in texts)
    assert stats.aligned == 1 and stats.negative_windows == len(feats) - texts.count("word59")


def test_answer_across_two_windows_is_whole_in_one_and_cls_in_the_cut_one(tokenizer):
    ctx = long_context()
    # find an answer that straddles the end of the first window's context
    feats, _ = prepare_eval_features([make(ctx, "word0")], tokenizer, CFG)
    first_end = feats.offsets[0][feats.offsets[0][:, 0] >= 0][-1, 1]
    straddle = next(f"word{i} word{i + 1}" for i in range(60) if ctx.index(f"word{i + 1}") + 3 > first_end)
    ex = make(ctx, straddle)
    train, stats = prepare_train_features([ex], tokenizer, CFG)
    texts = labelled_texts(train, [ex])
    assert texts[0] == "" and straddle in texts
    assert stats.aligned == 1


def test_answer_at_window_edge_tokens(tokenizer):
    ctx = "alpha beta gamma"
    ex = make(ctx, "alpha")
    feats, _ = prepare_train_features([ex], tokenizer, CFG)
    assert labelled_texts(feats, [ex]) == ["alpha"]
    ex = make(ctx, "gamma")
    feats, _ = prepare_train_features([ex], tokenizer, CFG)
    assert labelled_texts(feats, [ex]) == ["gamma"]


def test_unicode_context(tokenizer):
    ctx = "le café 東京 naïve 🎉 résumé final answer here"
    ex = make(ctx, "final answer")
    feats, _stats = prepare_train_features([ex], tokenizer, CFG.replace(max_length=64))
    assert labelled_texts(feats, [ex]) == ["final answer"]
    ex = make(ctx, "東京")
    feats, _ = prepare_train_features([ex], tokenizer, CFG.replace(max_length=64))
    assert labelled_texts(feats, [ex]) == ["東京"]


def test_partial_word_answer_labels_the_covering_tokens(tokenizer):
    ctx = "the broncos defeated the panthers"
    ex = Example("q", "t", ctx, "who", (Answer("bronco", ctx.index("bronco")),))
    feats, stats = prepare_train_features([ex], tokenizer, CFG)
    assert stats.aligned == 1
    assert "bronco" in labelled_texts(feats, [ex])[0]


def test_long_questions_are_cut_and_counted(tokenizer):
    ex = make("short context here", "here", question=" ".join(["why"] * 100))
    feats, stats = prepare_train_features([ex], tokenizer, CFG)
    assert stats.questions_truncated == 1
    assert labelled_texts(feats, [ex]) == ["here"]


def test_expand_answers_and_negative_downsampling(tokenizer):
    ctx = long_context()
    ex = Example("q", "t", ctx, "which", (Answer("word1", ctx.index("word1 ")), Answer("word50", ctx.index("word50"))))
    one, _ = prepare_train_features([ex], tokenizer, CFG)
    both, stats = prepare_train_features([ex], tokenizer, CFG.replace(expand_answers=True))
    assert len(both) == 2 * len(one) and stats.answers == 2
    few, stats = prepare_train_features([ex], tokenizer, CFG.replace(negative_window_keep=0.01))
    assert stats.negative_windows_dropped > 0 and len(few) < len(one)


def test_collate_pads_dynamically(tokenizer):
    exs = [make("a b c", "b"), make(long_context(10), "word3")]
    feats, _ = prepare_train_features(exs, tokenizer, CFG)
    batch = collate(feats, [0, 1], tokenizer.pad_token_id, labels=True)
    width = max(len(x) for x in feats.input_ids)
    assert batch["input_ids"].shape == (2, width)
    assert batch["attention_mask"][0].sum() == len(feats.input_ids[0])
    assert batch["start_positions"].tolist() == feats.start_positions[:2]


def test_length_grouped_batches():
    lengths = [5, 50, 6, 49, 7, 48, 8, 47]
    batches = length_grouped_batches(lengths, 2, seed=1, group=True)
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert batches == length_grouped_batches(lengths, 2, seed=1, group=True)
    assert length_grouped_batches(lengths, 2, seed=None, group=True)[0] == [1, 3]


def test_train_windows_do_not_depend_on_the_tokenizer_chunk(tokenizer):
    """Training questions are tokenized a chunk at a time (memory); the windows, labels, order and
    counts are those of one pass over everything."""
    from conftest import SAMPLE

    from spokenqa.config import preset
    from spokenqa.data import load_squad

    examples, _ = load_squad(SAMPLE)
    cfg = preset("cpu").replace(max_length=64, doc_stride=16, max_question_tokens=12, negative_window_keep=0.5)
    whole, whole_stats = prepare_train_features(examples, tokenizer, cfg, chunk=10**9)
    parts, parts_stats = prepare_train_features(examples, tokenizer, cfg, chunk=4)
    assert len(whole) > len(examples)  # several windows per question, some dropped at random
    assert whole.example_index == parts.example_index
    assert whole.start_positions == parts.start_positions and whole.end_positions == parts.end_positions
    assert all(np.array_equal(a, b) for a, b in zip(whole.input_ids, parts.input_ids))
    assert all(np.array_equal(a, b) for a, b in zip(whole.offsets, parts.offsets))
    assert whole_stats.summary() == parts_stats.summary()
