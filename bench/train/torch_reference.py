"""PyTorch reference for bench/train/throughput.ts: the tutorial CNN trained with Adam on random
32x32x3 images, one batch size per run; prints one JSON line (img/s, ms/step, peak RSS MiB).

Run it in PyTorch's fastest configuration on the bench machine (throughput.ts sets this):
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=1 \
  MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=134217728 \
  /usr/bin/python3 bench/train/torch_reference.py --batch 32 --threads 2

A bench-only script: PyTorch is never a dependency of Kiln.
"""
import argparse
import json
import resource
import sys
import time

sys.dont_write_bytecode = True  # the shared module below leaves no __pycache__ in bench/

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_tutorial import tutorial_cnn  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--images', type=int, default=4096)
    p.add_argument('--epochs', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = tutorial_cnn(3, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x = torch.rand(a.images, 3, 32, 32)
    y = torch.randint(0, 10, (a.images,))

    def epoch() -> None:
        # As Kiln's fit: shuffle, gather each batch, one step, read the loss back every step.
        order = torch.randperm(a.images)
        total = 0.0
        for k in range(0, a.images, a.batch):
            idx = order[k:k + a.batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)

    epoch()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.epochs):
        epoch()
    s = time.perf_counter() - t0
    steps = -(-a.images // a.batch) * a.epochs
    print(json.dumps({
        'imgPerSec': a.images * a.epochs / s,
        'msPerStep': 1000 * s / steps,
        'peakRssMiB': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'torch': torch.__version__,
        'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()
