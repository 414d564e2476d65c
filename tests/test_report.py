"""Figures and report.md say what they show: axis labels, every curve visible, counts as integers,
and which data file is which split."""

from __future__ import annotations

from spokenqa.report import (
    _score_panels,
    curve_figure,
    data_section,
    hist_figure,
    write_training_figures,
)


def _scores(em: float, f1: float) -> dict:
    # official EM in percent equals reference EM x100: the case where one line hid the other
    return {"official": {"exact_match": 100 * em, "f1": 100 * f1, "questions": 4},
            "reference": {"em": em, "f1": f1, "wer": 0.5, "answers": 4}}


HISTORY = [
    {"epoch": 0, "train_loss": None, "scores": _scores(0.0, 0.1)},
    {"epoch": 1, "train_loss": 2.5, "scores": _scores(0.25, 0.4)},
    {"epoch": 2, "train_loss": 1.5, "scores": _scores(0.5, 0.6)},
]


def test_em_f1_curves_are_all_visible_and_labelled():
    fig = curve_figure([h["epoch"] for h in HISTORY], _score_panels([h["scores"] for h in HISTORY]), "t")
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ["official (SQuAD v1.1), %", "reference (per answer entry) x100"]
    assert all(ax.get_xlabel() == "epoch" for ax in axes)
    lines = {line.get_label(): line for ax in axes for line in ax.get_lines()}
    assert set(lines) == {"official EM", "official F1", "reference EM", "reference F1"}
    # equal values sit in different panels, and within a panel no two lines share marker and style
    assert list(lines["official EM"].get_ydata()) == list(lines["reference EM"].get_ydata())
    assert lines["official EM"].axes is not lines["reference EM"].axes
    for ax in axes:
        looks = [(line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]
        assert len(set(looks)) == len(looks)


def test_every_training_figure_has_a_y_label(tmp_path, monkeypatch):
    from spokenqa import report

    made = []
    monkeypatch.setattr(report, "_save", lambda fig, path: made.append((path.name, fig)))
    write_training_figures(tmp_path, HISTORY, curve=[{"epoch": 0.5, "scores": _scores(0.1, 0.2)}])
    assert sorted(name for name, _ in made) == ["curve.png", "train_loss.png", "val_em_f1.png", "val_wer.png"]
    for name, fig in made:
        assert all(ax.get_ylabel() for ax in fig.get_axes()), name


def test_count_histograms_have_integer_ticks_and_one_bar_per_value():
    fig = hist_figure([1, 2, 2, 3, 3, 3], "answer length", "words")
    fig.canvas.draw()
    (ax,) = fig.get_axes()
    for ticks in (ax.get_xticks(), ax.get_yticks()):
        assert all(float(t).is_integer() for t in ticks), ticks
    heights = [p.get_height() for p in ax.patches]
    assert heights == [1, 2, 3]
    wide = hist_figure(list(range(500)), "context length", "words")
    assert len(wide.get_axes()[0].patches) == 50


def test_data_table_names_the_split_of_each_file():
    stats = {"file": "sample.json", "articles": 1, "paragraphs": 2, "questions": 3, "answers": 3,
             "answers_repaired": 0, "answers_skipped": 0, "questions_without_answers": 0}
    text = data_section({"train": [stats], "eval": stats})
    assert "| split | file |" in text
    assert "| train | `sample.json` |" in text and "| eval | `sample.json` |" in text


def test_report_lists_the_training_figures_before_the_data_figures(tmp_path):
    """report.md shows how the run went (loss, EM/F1, WER, curve) before the length histograms."""
    import re

    from spokenqa.config import RunConfig
    from spokenqa.report import write_report

    (tmp_path / "figures").mkdir()
    for name in ("eval_answer_words.png", "train_loss.png", "curve.png", "val_em_f1.png", "train_context_words.png"):
        (tmp_path / "figures" / name).write_bytes(b"png")
    summary = {"status": "finished", "epochs_done": 1, "steps": 3, "best": None, "final": None, "precision": "no",
               "processes": 1, "wall_seconds": 1.0, "train_examples": 1, "train_windows": 1, "eval_questions": 0}
    write_report(tmp_path, RunConfig(), summary, [], {"train": [], "eval": None, "train_alignment": {}}, None)
    report = (tmp_path / "report.md").read_text()
    shown = re.findall(r"!\[([\w.]+)\]", report)
    assert shown == ["train_loss.png", "val_em_f1.png", "curve.png", "eval_answer_words.png", "train_context_words.png"]
    assert "precision `fp32`" in report
