"""Choose the decoding settings (decoder rule and answer-length cap) on a VALIDATION set.

The decoders are spokenqa.decode's: `argmax` (the reference), `nbest` (probability pooled per
answer text) and `pipeline` (transformers' rule: the single most probable span), the last two
under each answer cap. The settings are a choice like any hyper-parameter: picking them by their effect on the
Spoken-SQuAD test would overstate the test score. This script runs the model once over a
validation file (the Festival+Sphinx set held out from the release training data:
runs/data/synth_val.json, built by scripts/release_model.sh), keeps every window's start/end
logits, and decodes them under each setting of the grid; decoding is cheap, the forward pass is
not. It prints one Markdown row per setting with both metric families and marks the best by
official F1 (ties: the smaller cap).

Usage: python scripts/choose_decoding.py VALIDATION.json [--checkpoint DIR] [--caps 10 15 20 30]
       (no --checkpoint: the shipped model)
"""

from __future__ import annotations

import argparse
import time

from spokenqa.checkpoint import load_checkpoint, resolve_checkpoint
from spokenqa.data import load_squad
from spokenqa.decode import decode
from spokenqa.features import prepare_eval_features
from spokenqa.inference import cpu_streams, predict_logits, prepare_for_inference
from spokenqa.metrics import all_scores


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", help="a SQuAD-format validation file (never the test set)")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    p.add_argument("--caps", type=int, nargs="+", default=[10, 15, 20, 30],
                   help="answer-length caps in tokens for the n-best decoder")
    p.add_argument("--n-best", type=int, default=20, help="candidate spans kept per window")
    args = p.parse_args()

    model, tokenizer, cfg = load_checkpoint(resolve_checkpoint(args.checkpoint))
    device, precision = prepare_for_inference(model, cfg.mixed_precision)
    examples, _ = load_squad(args.data, cfg.lowercase)
    features, _ = prepare_eval_features(examples, tokenizer, cfg)
    t0 = time.time()
    start, end = predict_logits(model, features, tokenizer.pad_token_id, cfg.eval_batch_size, precision,
                                streams=cpu_streams(device))
    print(f"{args.data}: {len(examples)} questions, {len(features)} windows, forward pass "
          f"{time.time() - t0:.1f} s ({precision})\n")

    grid = [("argmax", 0)] + [(decoder, cap) for decoder in ("nbest", "pipeline") for cap in sorted(args.caps)]
    rows = []
    for decoder, cap in grid:
        predictions = decode(examples, features, start, end, decoder, args.n_best, cap or 10**6)
        scores = all_scores(examples, {q.id: q.text for q in predictions})
        rows.append((decoder, cap, scores))
    best = max(rows, key=lambda r: (r[2]["official"]["f1"], -r[1]))
    print("| decoder | answer cap (tokens) | official EM | official F1 | ref EM | ref F1 | |")
    print("|---|---|---|---|---|---|---|")
    for decoder, cap, s in rows:
        o, r = s["official"], s["reference"]
        mark = "**best**" if (decoder, cap) == best[:2] else ""
        print(f"| {decoder} | {cap or 'none'} | {o['exact_match']:.2f} | {o['f1']:.2f} | "
              f"{r['em']:.4f} | {r['f1']:.4f} | {mark} |")


if __name__ == "__main__":
    main()
