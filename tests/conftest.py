"""Shared fixtures: the shipped tokenizer, a tiny random-weight BERT folder, data paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "src" / "spokenqa" / "sample" / "sample_spoken.json"


def shared_data() -> Path:
    """SPOKENQA_DATA, or ../shared/data next to the repository."""
    return Path(os.environ.get("SPOKENQA_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def tokenizer():
    from spokenqa.config import preset
    from spokenqa.model import build_tokenizer

    return build_tokenizer(preset("cpu"))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A 3-layer, 32-wide random BERT with the shipped vocabulary, saved like a hub folder."""
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_squad(path: Path, paragraphs: list[tuple[str, list[tuple[str, str, list[tuple[str, int]]]]]]) -> Path:
    """Write a SQuAD file from [(context, [(id, question, [(answer, start)])])]."""
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [
        {"context": c, "qas": [{"id": i, "question": q, "answers": [{"text": t, "answer_start": s} for t, s in a]}
                               for i, q, a in qas]}
        for c, qas in paragraphs]}]}
    path.write_text(json.dumps(data))
    return path
