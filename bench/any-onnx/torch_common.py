"""Shared by the PyTorch references of bench/any-onnx: the fixtures' models and data
(test/fixtures/exported/models.py), a training loop and test accuracy. Bench-only: PyTorch is never a
dependency of Kiln."""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'exported'))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import models  # noqa: E402,F401  (re-exported for the scripts)


def train(model, x, y, epochs: int, batch_size: int, lr: float, gen: torch.Generator, params=None, features=None, orders=None,
          loss_fn=F.cross_entropy) -> float:
    """Adam (torch defaults but lr), mean cross-entropy (or loss_fn), a fresh shuffle from gen each epoch (or the
    given orders: one index tensor per epoch), one step per batch, the loss read back every step (as
    Kiln's fit). model.train() unless the caller set modes.
    features: a frozen function run under no_grad before model (model is then the trainable part).
    Returns the seconds the loop took (shuffles, gathers and steps; nothing else)."""
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=lr)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=gen) if orders is None else orders[epoch]
        for k in range(0, len(x), batch_size):
            idx = order[k:k + batch_size]
            xb = x[idx]
            if features is not None:
                with torch.no_grad():
                    xb = features(xb)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), y[idx])
            loss.backward()
            opt.step()
            loss.item()
    return time.perf_counter() - t0


def accuracy(model, x, y, batch_size: int = 1000) -> float:
    """Top-1 accuracy with model in eval() mode; for logits N x L x C (a label per token), over the
    labels that are not models.IGNORE_INDEX; for N x C x H x W (a label per pixel), classes on axis 1."""
    model.eval()
    correct = counted = 0
    with torch.no_grad():
        for k in range(0, len(x), batch_size):
            logits, labels = model(x[k:k + batch_size]), y[k:k + batch_size]
            labelled = labels != models.IGNORE_INDEX
            predicted = logits.argmax(1) if logits.dim() == 4 else logits.argmax(-1)
            correct += ((predicted == labels) & labelled).sum().item()
            counted += labelled.sum().item()
    return correct / counted
