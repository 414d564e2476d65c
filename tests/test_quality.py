"""A quality guard with the real shipped encoder: learning must work, not only run.

The other training tests use tiny random-weight models, which show the loop's mechanics but not
that it learns: a wrong label offset, a broken loss or a frozen encoder would still pass them. Here
the shipped MiniLM is fine-tuned on the built-in sample (27 questions, as the README's demo does)
and must beat its own untrained head (the epoch-0 baseline) by a wide margin. The sample is both
the training and the evaluation set: this checks learning, not generalisation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spokenqa.config import preset
from spokenqa.train import train

SAMPLE = Path(__file__).parents[1] / "src" / "spokenqa" / "sample" / "sample_spoken.json"


@pytest.mark.slow
def test_a_short_run_on_the_sample_beats_the_untrained_head(tmp_path: Path) -> None:
    cfg = preset("cpu").replace(
        train_files=(str(SAMPLE),), eval_file=str(SAMPLE), out_dir=str(tmp_path / "run"),
        epochs=6, train_batch_size=8, baseline=True, seed=42,
    )
    train(cfg)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    untrained, trained = history[0], history[-1]
    assert untrained["epoch"] == 0 and trained["epoch"] == 6
    before, after = untrained["scores"]["official"]["f1"], trained["scores"]["official"]["f1"]
    # the demo's report shows an untrained head near 10 and a trained one past 50: 20 points is a
    # margin a working run keeps on either precision and a broken one does not reach
    assert after >= before + 20, (before, after)
    assert trained["train_loss"] < history[1]["train_loss"], "the training loss must fall"
