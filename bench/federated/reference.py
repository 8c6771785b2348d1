"""PyTorch reference for bench/federated/simulate.ts: the same federated simulation (FedAvg, or central
training) of the tutorial CNN on Fashion-MNIST, with the clients' shards read from the JSON file the
Kiln bench writes, so both sides train on exactly the same split. Prints one JSON line per round:
{"round": r, "accuracy": a, "loss": l, "seconds": s}.

  /usr/bin/python3 bench/federated/reference.py --split split.json [--rounds 20] [--optimizer sgd|adam]
      [--lr 0.02] [--batch 32] [--local-epochs 1] [--test-limit N] [--dir /usr/share/datasets/fashion-mnist]
      [--central] [--threads 2] [--seed 0]

split.json: {"shards": [[train indices of client 0], ...]}. With --central, one "client" holding the
union of the shards trains for rounds × local epochs. Local optimizer state starts fresh every round,
as Kiln's clients do. A bench-only script: PyTorch is never a dependency of Kiln.
"""
import argparse
import gzip
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path: str) -> np.ndarray:
    with gzip.open(path, 'rb') as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def tutorial_cnn() -> nn.Module:
    # Kiln's tutorial CNN on 28x28x1: valid 3x3 convs, 2x2 max pools, Dense 64, Dense 10 (logits).
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * 3 * 3, 64), nn.ReLU(),
        nn.Linear(64, 10),
    )


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
    p.add_argument('--rounds', type=int, default=20)
    p.add_argument('--optimizer', default='sgd')
    p.add_argument('--lr', type=float, default=0.02)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--local-epochs', type=int, default=1)
    p.add_argument('--test-limit', type=int, default=10000)
    p.add_argument('--dir', default='/usr/share/datasets/fashion-mnist')
    p.add_argument('--central', action='store_true')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    train_x = torch.from_numpy(read_idx(os.path.join(a.dir, 'train-images-idx3-ubyte.gz')).astype(np.float32) / 255.0).unsqueeze(1)
    train_y = torch.from_numpy(read_idx(os.path.join(a.dir, 'train-labels-idx1-ubyte.gz')).astype(np.int64))
    test_x = torch.from_numpy(read_idx(os.path.join(a.dir, 't10k-images-idx3-ubyte.gz')).astype(np.float32) / 255.0).unsqueeze(1)[:a.test_limit]
    test_y = torch.from_numpy(read_idx(os.path.join(a.dir, 't10k-labels-idx1-ubyte.gz')).astype(np.int64))[:a.test_limit]
    with open(a.split) as f:
        shards = [torch.tensor(s, dtype=torch.long) for s in json.load(f)['shards']]
    if a.central:
        shards = [torch.cat(shards)]
    clients = [(train_x[s], train_y[s]) for s in shards]

    model = tutorial_cnn()
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
