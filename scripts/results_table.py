"""Print a markdown table of finished runs (read from their run folders, never typed by hand).

Usage: python scripts/results_table.py runs/exp_a_text runs/exp_b_spoken ...
       python scripts/results_table.py --eval eval_s2 runs/exp_a_text ...   # `spokenqa evaluate --out RUN/eval_s2`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def score_cells(o: dict, r: dict) -> str:
    """official EM | official F1 | ref EM | ref F1 | ref WER, as every table here prints them."""
    return f"{o['exact_match']:.2f} | {o['f1']:.2f} | {r['em']:.4f} | {r['f1']:.4f} | {r['wer']:.4f}"


def row(run: Path) -> str:
    cfg = json.loads((run / "config.json").read_text())["config"]
    summary = json.loads((run / "summary.json").read_text())
    final = summary["final"]
    o, r = final["scores"]["official"], final["scores"]["reference"]
    files = ", ".join(Path(f).name for f in cfg["train_files"])
    return (
        f"| `{run.name}` | {files} | {summary['train_examples']} q / {summary['train_windows']} w | "
        f"{summary['steps']} x {cfg['train_batch_size']} | {final['train_seconds']:.0f} s | {final['train_loss']:.3f} | "
        f"{score_cells(o, r)} | {final['eval_questions_per_s']:.1f} |"
    )


def eval_row(run: Path, name: str) -> str:
    """One row from the metrics.json that `spokenqa evaluate --out RUN/NAME` wrote."""
    m = json.loads((run / name / "metrics.json").read_text())
    o, r = m["official"], m["reference"]
    return f"| `{run.name}` | {score_cells(o, r)} |"


def main(runs: list[str]) -> None:
    if runs[:1] == ["--eval"]:
        name, runs = runs[1], runs[2:]
        print(f"| run ({name}) | official EM | official F1 | ref EM | ref F1 | ref WER |")
        print("|---|---|---|---|---|---|")
        for run in runs:
            print(eval_row(Path(run), name))
        return
    print("| run | training data | train size | steps x batch | train time | final loss | official EM | "
          "official F1 | ref EM | ref F1 | ref WER | eval q/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        print(row(Path(run)))


if __name__ == "__main__":
    main(sys.argv[1:])
