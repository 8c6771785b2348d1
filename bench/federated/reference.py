"""PyTorch reference for bench/federated/simulate.ts: the same federated simulation (FedAvg, or central
training) of the tutorial CNN on Fashion-MNIST, with the clients' shards read from the JSON file the
Kiln bench writes, so both sides train on exactly the same split, and with --init from Kiln's initial
weights (the folder the bench writes, bench/federated/starting-point.ts): before training it runs the
loaded model on the first test images and stops, naming the difference, unless its logits are within
1e-4 of Kiln's. Prints one JSON line for that check, {"initialLogitsMaxDiff": d, "images": n}, then one
per round: {"round": r, "accuracy": a, "loss": l, "seconds": s}.

  /usr/bin/python3 bench/federated/reference.py --split split.json [--init folder] [--rounds 20]
      [--optimizer sgd|adam] [--lr 0.02] [--batch 32] [--local-epochs 1] [--test-limit N] [--central]
      [--threads 2] [--seed 0]

split.json: {"shards": [[train indices of client 0], ...]}. With --central, one "client" holding the
union of the shards trains for rounds × local epochs. Local optimizer state starts fresh every round,
as Kiln's clients do. Fashion-MNIST comes from Debian's dataset-fashion-mnist
(test/fixtures/exported/models.py reads it). A bench-only script: PyTorch is never a dependency of Kiln.
"""
import argparse
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # the shared modules below leave no __pycache__ in the repository
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'train'))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'test', 'fixtures', 'exported'))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from models import fashion_mnist  # noqa: E402
from torch_tutorial import load_kiln_starting_point, tutorial_cnn  # noqa: E402

# How far PyTorch's initial logits may be from Kiln's on the same images: float32 round-off only.
LOGIT_TOLERANCE = 1e-4


def make_optimizer(name: str, params, lr: float):
    if name == 'sgd':
        return torch.optim.SGD(params, lr=lr)
    if name == 'adam':
        return torch.optim.Adam(params, lr=lr, eps=1e-7)  # Keras' (and Kiln's) epsilon
    raise SystemExit(f'unknown optimizer {name}')


def train_local(model, state, x, y, a, gen):
    model.load_state_dict(state)
    opt = make_optimizer(a.optimizer, model.parameters(), a.lr)
    model.train()
    n = len(x)
    for _ in range(a.local_epochs):
        order = torch.randperm(n, generator=gen)
        for k in range(0, n, a.batch):
            idx = order[k:k + a.batch]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        correct = 0
        loss = 0.0
        for k in range(0, len(x), 1000):
            out = model(x[k:k + 1000])
            loss += F.cross_entropy(out, y[k:k + 1000], reduction='sum').item()
            correct += (out.argmax(1) == y[k:k + 1000]).sum().item()
    return correct / len(x), loss / len(x)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--split', required=True)
    p.add_argument('--init', help='a Kiln starting point (bench/federated/starting-point.ts) to start from; absent: torch\'s default initialization')
    p.add_argument('--rounds', type=int, default=20)
    p.add_argument('--optimizer', default='sgd')
    p.add_argument('--lr', type=float, default=0.02)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--local-epochs', type=int, default=1)
    p.add_argument('--test-limit', type=int, default=10000)
    p.add_argument('--central', action='store_true')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    train_x, train_y = fashion_mnist('train')
    test_x, test_y = fashion_mnist('test', a.test_limit)
    with open(a.split) as f:
        shards = [torch.tensor(s, dtype=torch.long) for s in json.load(f)['shards']]
    if a.central:
        shards = [torch.cat(shards)]
    clients = [(train_x[s], train_y[s]) for s in shards]

    model = tutorial_cnn(1, 28)
    if a.init:
        kiln_logits = load_kiln_starting_point(model, a.init)
        model.eval()
        with torch.no_grad():
            logits = model(test_x[:len(kiln_logits)]).numpy()
        diff = float(np.abs(logits - kiln_logits).max())
        if not diff <= LOGIT_TOLERANCE:
            raise SystemExit(f'{a.init}: PyTorch\'s logits from Kiln\'s initial weights differ from Kiln\'s by up to {diff:.3g} (tolerance {LOGIT_TOLERANCE}): the weights are not mapped right')
        print(json.dumps({'initialLogitsMaxDiff': diff, 'images': len(kiln_logits)}), flush=True)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for r in range(1, a.rounds + 1):
        t0 = time.perf_counter()
        total = sum(len(x) for x, _ in clients)
        new_state = {k: torch.zeros_like(v) for k, v in state.items()}
        for x, y in clients:
            local = train_local(model, state, x, y, a, gen)
            for k in new_state:
                new_state[k] += local[k] * (len(x) / total)
        state = new_state
        seconds = time.perf_counter() - t0
        model.load_state_dict(state)
        acc, loss = evaluate(model, test_x, test_y)
        print(json.dumps({'round': r, 'accuracy': acc, 'loss': loss, 'seconds': seconds}), flush=True)


if __name__ == '__main__':
    main()
