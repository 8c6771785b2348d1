"""Kiln's tutorial CNN in PyTorch, shared by the bench references that train it (bench/train/
torch_reference.py, bench/federated/reference.py), and loading a Kiln starting point into it (the folder
bench/federated/starting-point.ts writes). Bench-only: PyTorch is never a dependency of Kiln."""
import json
import os

import numpy as np
import torch
import torch.nn as nn


def tutorial_cnn(channels: int, side: int, classes: int = 10) -> nn.Module:
    """Kiln's tutorial CNN on side x side x channels images: valid 3x3 convs, 2x2 max pools, Dense 64,
    Dense classes (logits). NCHW, PyTorch's native layout."""
    flat = ((side - 2) // 2 - 2) // 2 - 2
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(64 * flat * flat, 64), nn.ReLU(),
        nn.Linear(64, classes),
    )


def load_kiln_starting_point(model: nn.Module, folder: str) -> np.ndarray:
    """Copies the weights of a Kiln starting point (weights.json and one .npy per weight) into model,
    position by position, and returns Kiln's logits on the first test images, for the caller's check.
    Kiln's Conv2D kernels are [filters, channels, kH, kW] as torch's; its Dense kernels are [in, out],
    torch's Linear [out, in]; its Flatten orders (channel, row, column), as torch's on NCHW."""
    with open(os.path.join(folder, 'weights.json')) as f:
        index = json.load(f)
    if index.get('format') != 'kiln-starting-point/1':
        raise SystemExit(f"{folder}/weights.json: format should be 'kiln-starting-point/1', got {index.get('format')!r}")
    params = list(model.named_parameters())
    if len(params) != len(index['weights']):
        raise SystemExit(f"{folder}: {len(index['weights'])} Kiln weights for {len(params)} torch parameters")
    with torch.no_grad():
        for (name, p), w in zip(params, index['weights']):
            value = np.load(os.path.join(folder, w['file']))
            if isinstance(dict(model.named_modules())[name.rsplit('.', 1)[0]], nn.Linear) and value.ndim == 2:
                value = value.T  # Dense [in, out] -> Linear [out, in]
            if tuple(value.shape) != tuple(p.shape):
                raise SystemExit(f"{folder}: Kiln's '{w['name']}' {list(w['dims'])} does not fit torch's '{name}' {list(p.shape)}")
            p.copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return np.load(os.path.join(folder, index['logits']['file']))
