"""`spokenqa evaluate --index` in two steps, for a busy machine: `ask` retrieves and reads (the
slow part: the reader over every question's passages) and saves what it read; `score` ranks it
with a calibration and prints the metrics `evaluate --index` prints. The same functions
(`spokenqa.archive.evaluate.ask_all`, `rank_all`, `score`) as the command, so the numbers are
the command's; the split lets the reading start before the calibration is fit, and lets one
reading be scored with several calibrations or thresholds.

    python bench/archive_open.py ask INDEX DATA --mode hybrid --fusion score --weight 0.5 --n 1000 --out R.pkl
    python bench/archive_open.py score INDEX R.pkl [--calibration FILE] [--threshold P]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys

from spokenqa.archive.calibrate import Calibration, uncalibrated
from spokenqa.archive.evaluate import ask_all, rank_all, score
from spokenqa.archive.read import ArchiveQA


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="step", required=True)
    a = sub.add_parser("ask")
    a.add_argument("index")
    a.add_argument("data")
    a.add_argument("--mode", default="hybrid")
    a.add_argument("--fusion", default="score")
    a.add_argument("--weight", type=float, default=0.5)
    a.add_argument("--passages", type=int, default=5)
    a.add_argument("--n", type=int, default=None, help="the first N questions")
    a.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("index")
    s.add_argument("asked")
    s.add_argument("--calibration", default=None, help="default: the shipped reader's")
    s.add_argument("--threshold", type=float, default=None)
    args = p.parse_args()

    from spokenqa.data import load_squad
    from spokenqa.qa import QA

    if args.step == "ask":
        examples, _ = load_squad(args.data, True, True, max_questions=args.n)
        qa = QA.load()
        with ArchiveQA.open(args.index, qa, uncalibrated()) as archive:  # reading needs no calibration
            load_before = os.getloadavg()
            asked = ask_all(archive, examples, args.passages, args.mode, args.weight, args.fusion, progress=True)
        about = {"index": args.index, "data": args.data, "mode": args.mode, "fusion": args.fusion,
                 "weight": args.weight, "passages": args.passages, "questions": len(asked),
                 "load_average_before": load_before, "load_average_after": os.getloadavg(),
                 "runtime": qa.runtime.to_dict()}
        with open(args.out, "wb") as f:
            pickle.dump({"about": about, "asked": asked}, f)
        print(json.dumps(about))
        return 0
    with open(args.asked, "rb") as f:
        saved = pickle.load(f)
    cal = Calibration.load(args.calibration) if args.calibration else None
    with ArchiveQA.open(args.index, _NoReader(), cal or _shipped()) as archive:
        results = rank_all(archive, saved["asked"], saved["about"]["passages"], args.threshold)
        metrics = score(saved["asked"], results)
    print(json.dumps({**metrics, "threshold": results[0].threshold, "about": saved["about"]}, indent=2))
    return 0


class _NoReader:
    """`score` reads nothing: ArchiveQA needs a reader object only for its folder."""

    folder = None


def _shipped() -> Calibration:
    from spokenqa.archive.calibrate import FILENAME
    from spokenqa.checkpoint import RELEASE_MODEL

    return Calibration.load(RELEASE_MODEL / FILENAME)


if __name__ == "__main__":
    sys.exit(main())
