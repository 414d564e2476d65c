"""Print a seeded random sample of a model's wrong answers (official F1 = 0) on a SQuAD file,
with the question, the gold answers, the prediction and the transcript around both: the failure
examples of docs/MODEL.md are drawn this way, not picked by hand.

Usage: python scripts/failures.py DATA.json PREDICTIONS.json [--n 5] [--seed 0]
       (PREDICTIONS.json: `spokenqa evaluate --out DIR` writes DIR/predictions.json)
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from spokenqa.data import load_squad
from spokenqa.metrics import question_scores


def snippet(context: str, start: int, end: int, width: int = 60) -> str:
    """The text around [start, end), the span itself in [brackets]."""
    left, right = max(0, start - width), min(len(context), end + width)
    return f"...{context[left:start]}[{context[start:end]}]{context[end:right]}..."


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("predictions")
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    examples, _ = load_squad(args.data, lowercase=True)
    predictions = json.loads(Path(args.predictions).read_text(encoding="utf-8"))
    wrong = [e for e in examples
             if question_scores(predictions.get(e.id, ""), [a.text for a in e.answers])[1] == 0]
    print(f"{len(wrong)} of {len(examples)} questions have official F1 0; {args.n} drawn with seed {args.seed}:")
    for e in random.Random(args.seed).sample(wrong, min(args.n, len(wrong))):
        pred = predictions.get(e.id, "")
        gold = e.answers[0]
        at = e.context.find(pred) if pred else -1
        print(f"\n- id {e.id} ({e.title})\n  Q: {e.question}\n  gold: {sorted({a.text for a in e.answers})}"
              f"\n  predicted: {pred!r}\n  gold in transcript: {snippet(e.context, gold.start, gold.start + len(gold.text))}")
        if at >= 0:
            print(f"  prediction in transcript (first occurrence): {snippet(e.context, at, at + len(pred))}")


if __name__ == "__main__":
    main()
