"""The ASR ceiling on the validation set: the same paragraphs and questions as the Festival+Sphinx
validation set (`spokenqa data convert-synth`), but over the paragraphs' source text made spoken
style (`spokenize`: numbers as words, lower case) with no recognition errors. Scoring a model on
both splits its error into what ASR costs (the difference) and what the reader cannot do even on
clean text (100 minus the clean score).

Usage: python scripts/asr_ceiling.py SYNTH.jsonl SYNTH_VAL.json OUT.json
  then: spokenqa evaluate --data SYNTH_VAL.json; spokenqa evaluate --data OUT.json
"""

from __future__ import annotations

import argparse

from spokenqa.corpus.align import load_synth_jsonl
from spokenqa.files import atomic_write_json, read_json
from spokenqa.spoken import spokenize_squad


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("synth", help="the Festival+Sphinx synth set (JSONL)")
    p.add_argument("val", help="its conversion to SQuAD over the transcripts (the questions to keep)")
    p.add_argument("out", help="SQuAD file to write: the source text, spoken style, same questions")
    args = p.parse_args()
    keep = {qa["id"] for article in read_json(args.val)["data"] for par in article["paragraphs"] for qa in par["qas"]}
    source = {"version": "1.1", "data": [
        {"title": rec["title"], "paragraphs": [{"context": rec["context"], "qas": rec["qas"]}]}
        for rec in load_synth_jsonl(args.synth)]}
    spoken, stats = spokenize_squad(source, source=args.synth)
    for article in spoken["data"]:
        for par in article["paragraphs"]:
            par["qas"] = [qa for qa in par["qas"] if qa["id"] in keep]
    kept = sum(len(par["qas"]) for article in spoken["data"] for par in article["paragraphs"])
    atomic_write_json(args.out, spoken, indent=None, ensure_ascii=False)
    print(f"{args.out}: {kept} of the {len(keep)} validation questions over their spoken-style source text "
          f"({stats.answers_unmapped} answers could not be placed in it)")


if __name__ == "__main__":
    main()
