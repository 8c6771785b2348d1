"""torchvision's architectures for bench/any-onnx/torchvision.ts (Debian's python3-torchvision 0.14 and
python3-torch 1.13; bench-only, never a dependency of Kiln). Each model is built as torchvision builds it
(seed 0, 10 classes, dropout and stochastic depth at 0: the export in eval mode has none, so both sides
train the same graph) and:

  export --model NAME --dir DIR [--size 32]
      writes DIR/NAME.onnx as a user exports it (torch.onnx.export, opset 17, dynamic batch, training=
      PRESERVE so BatchNorm stays a node) and DIR/NAME.pt (its weights), and prints PyTorch's loss on one
      seeded batch of 8 images in train() mode and, per ONNX initializer, the L2 norm of its gradient and a
      probe (the gradient's elements weighted by (i mod 7) - 3, i the flat index) — enough to tell two
      gradients apart without writing millions of numbers.
  train --model NAME --dir DIR [--size 32] [--images 640] [--batch-size 64] [--threads 1]
      trains those weights with Adam (torch defaults, lr 1e-3) on seeded random images, two epochs of one
      shuffle each, and prints the images per second of the second (the first warms up).

One JSON line on stdout.
"""
import argparse
import base64
import copy
import json
import os
import sys
import time

sys.dont_write_bytecode = True

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import torchvision  # noqa: E402


def build(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout) or type(m).__name__ == 'StochasticDepth':
            m.p = 0.0
    return model


def probe(g: torch.Tensor) -> float:
    flat = g.detach().reshape(-1).double()
    weights = (torch.arange(flat.numel(), dtype=torch.float64) % 7) - 3
    return float((flat * weights).sum())


def onnx_names(path: str):
    """Every float initializer of the file and every Identity of one (the exporter's merged equal
    tensors), with the initializer's values: what Kiln's parameters are named."""
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(path)
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer if numpy_helper.to_array(t).dtype.kind == 'f'}
    names = dict(values)
    for n in proto.graph.node:
        if n.op_type == 'Identity' and n.input[0] in values:
            names[n.output[0]] = values[n.input[0]]
    return names


def reference(model: torch.nn.Module, names: dict, x: torch.Tensor, y: torch.Tensor):
    """Loss and, per ONNX initializer name, the gradient's norm and probe, in train() mode."""
    model.train()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    params = dict(model.named_parameters())
    gradients = {}
    for name, value in names.items():
        if name in params:
            grad = params[name].grad
        else:
            # A weight the exporter folded into a constant of its own (a Linear's weight transposed for
            # MatMul, `onnx::MatMul_830`): the parameter whose transpose it equals.
            value = torch.from_numpy(value.copy()).to(next(model.parameters()).dtype)
            hits = [p for p in params.values() if p.dim() == 2 and p.t().shape == value.shape and torch.allclose(p.detach().t(), value, rtol=0, atol=1e-7)]
            if len(hits) != 1:
                continue  # a buffer (running statistics) or a constant: no gradient
            grad = hits[0].grad.t()
        if grad is not None:
            gradients[name] = {'norm': float(grad.double().norm()), 'probe': probe(grad)}
    return loss.item(), gradients


def export(args) -> dict:
    model = build(args.model).eval()
    path = os.path.join(args.dir, f'{args.model}.onnx')
    torch.onnx.export(model, torch.zeros(2, 3, args.size, args.size), path, opset_version=17, input_names=['input'], output_names=['logits'],
                      dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, training=torch.onnx.TrainingMode.PRESERVE)
    torch.save(model.state_dict(), os.path.join(args.dir, f'{args.model}.pt'))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(8, 3, args.size, args.size, generator=g)
    y = torch.arange(8) % 10
    names = onnx_names(path)
    # The same step in float64 too: how far float32 rounding alone moves these gradients (deep
    # networks, fresh weights and BatchNorm over few values amplify it), PyTorch's own and Kiln's.
    loss64, gradients64 = reference(copy.deepcopy(model).double(), names, x.double(), y)
    loss, gradients = reference(model, names, x, y)
    return {
        'loss64': loss64,
        'gradients64': gradients64,
        'model': args.model,
        'torch': torch.__version__,
        'torchvision': torchvision.__version__,
        'parameters': sum(p.numel() for p in model.parameters()),
        'loss': loss,
        'input': base64.b64encode(x.numpy().astype('<f4').tobytes()).decode('ascii'),
        'inputShape': list(x.shape),
        'labels': y.tolist(),
        'gradients': gradients,
    }


def train(args) -> dict:
    torch.set_num_threads(args.threads)
    model = build(args.model)
    model.load_state_dict(torch.load(os.path.join(args.dir, f'{args.model}.pt')))
    g = torch.Generator().manual_seed(2)
    x = torch.rand(args.images, 3, args.size, args.size, generator=g)
    y = torch.randint(0, 10, (args.images,), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    seconds = []
    for _ in range(2):
        order = torch.randperm(args.images, generator=g)
        t0 = time.perf_counter()
        for k in range(0, args.images, args.batch_size):
            idx = order[k:k + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            loss.item()
        seconds.append(time.perf_counter() - t0)
    return {'model': args.model, 'threads': args.threads, 'imagesPerSecond': args.images / seconds[-1]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('command', choices=['export', 'train'])
    p.add_argument('--model', required=True)
    p.add_argument('--dir', required=True)
    p.add_argument('--size', type=int, default=32)
    p.add_argument('--images', type=int, default=640)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--threads', type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(json.dumps(export(args) if args.command == 'export' else train(args)))


if __name__ == '__main__':
    main()
