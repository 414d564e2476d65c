import math

import pytest
import torch
import torch.nn.functional as F

from spokenqa.checkpoint import load_checkpoint, save_checkpoint
from spokenqa.config import RunConfig, preset
from spokenqa.model import build_model, focal_loss


def test_focal_gamma_zero_is_cross_entropy():
    torch.manual_seed(0)
    logits, targets = torch.randn(4, 9), torch.tensor([0, 3, 8, 2])
    assert focal_loss(logits, targets, 0.0) == pytest.approx(F.cross_entropy(logits, targets).item(), rel=1e-6)


def test_focal_hand_computed():
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25]]))  # softmax = (0.5, .25, .25)
    # target 0: p = 0.5 -> -(1 - 0.5)^1 * ln 0.5 = 0.5 * ln 2
    assert focal_loss(logits, torch.tensor([0]), 1.0).item() == pytest.approx(0.5 * math.log(2), rel=1e-6)
    # gamma 2, target 1: p = .25 -> .75^2 * ln 4
    assert focal_loss(logits, torch.tensor([1]), 2.0).item() == pytest.approx(0.5625 * math.log(4), rel=1e-6)


@pytest.mark.parametrize("head", ["linear", "reference"])
def test_head_shapes_and_padding_mask(tiny_model_dir, head):
    model, _ = build_model(preset("cpu").replace(model=str(tiny_model_dir), head=head))
    ids = torch.randint(1000, 2000, (2, 7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    start, end = model(ids, mask)
    assert start.shape == end.shape == (2, 7)
    assert (start[1, 5:] < -1e3).all() and (end[1, 5:] < -1e3).all()
    if head == "reference":
        assert model.head[1].in_features == 2 * model.encoder.config.hidden_size
        assert isinstance(model.head[0], torch.nn.Dropout) and isinstance(model.head[2], torch.nn.LeakyReLU)


def test_config_round_trip(tmp_path):
    cfg = preset("reference").replace(train_files=["a.json", "b.json"], eval_file="c.json", max_train_examples=5)
    cfg.save(tmp_path / "c.json", extra={"x": 1})
    assert RunConfig.load(tmp_path / "c.json") == cfg


def test_checkpoint_round_trip_gives_identical_logits(tmp_path, tiny_model_dir):
    cfg = preset("cpu").replace(model=str(tiny_model_dir), head="reference")
    model, tok = build_model(cfg)
    model.eval()
    save_checkpoint(tmp_path / "ckpt", model, tok, cfg, {"epoch": 1})
    again, tok2, cfg2 = load_checkpoint(tmp_path / "ckpt")
    assert cfg2 == cfg and tok2.vocab_size == tok.vocab_size
    ids = torch.randint(1000, 2000, (3, 11))
    with torch.no_grad():
        a, b = model(ids, torch.ones_like(ids)), again(ids, torch.ones_like(ids))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not list(tmp_path.glob(".ckpt*")), "no temp folders left behind"
