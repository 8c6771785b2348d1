"""PyTorch reference for fine-tuning the exported text fixtures (test/fixtures/exported/textcls.onnx,
textmask.onnx, tokentag.onnx, causallm.onnx): the same architecture starting from exactly the .onnx's weights, trained
on the token data finetune-text.js writes (NumPy files in --data: {train,test}_input_ids.npy, for
textmask and tokentag also {train,test}_attention_mask.npy, and {train,test}_labels.npy: [N], or [N, 12]
with -100 on padding for tokentag, next-token labels with -100 last for causallm) with Adam (torch
defaults except lr) and mean cross-entropy (over the labelled tokens for tokentag and causallm:
models.token_cross_entropy), in the batch order of --order; then
top-1 accuracy on the test part (of the labelled tokens). Prints one JSON object on stdout, nothing else:
{fixture, epochs, batchSize, lr, seed, trainExamples, testAccuracy, trainSeconds, examplesPerSecond, torchVersion, threads}
trainSeconds and examplesPerSecond cover the training loop only.

  /usr/bin/python3 bench/any-onnx/torch_finetune_text.py --fixture textmask --data DIR --epochs 2 --batch-size 64 --lr 1e-3 --seed 0 --order FILE [--threads 1]
"""
import argparse
import json
import os

import numpy as np

from torch_common import F, accuracy, models, torch, train


class BothInputs(torch.nn.Module):
    """textmask's (and tokentag's) two inputs as one tensor [N, 2, 12] (ids, mask), so the shared loop indexes one x."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x[:, 0], x[:, 1])


def load(data: str, part: str, masked: bool):
    ids = torch.from_numpy(np.load(os.path.join(data, f'{part}_input_ids.npy')))
    x = torch.stack([ids, torch.from_numpy(np.load(os.path.join(data, f'{part}_attention_mask.npy')))], 1) if masked else ids
    return x, torch.from_numpy(np.load(os.path.join(data, f'{part}_labels.npy')).astype(np.int64))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--fixture', required=True, choices=['textcls', 'textmask', 'tokentag', 'causallm'])
    p.add_argument('--data', required=True)
    p.add_argument('--epochs', type=int, required=True)
    p.add_argument('--batch-size', type=int, required=True)
    p.add_argument('--lr', type=float, required=True)
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--order', required=True, help='little-endian int32 file: the batch order of each epoch (epochs x examples)')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    masked = a.fixture in ('textmask', 'tokentag')
    model = models.load_fixture(a.fixture)
    model = BothInputs(model) if masked else model
    x, y = load(a.data, 'train', masked)
    tx, ty = load(a.data, 'test', masked)
    with open(a.order, 'rb') as f:
        orders = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long().reshape(a.epochs, len(x))
    model.train()
    loss_fn = models.token_cross_entropy if a.fixture in ('tokentag', 'causallm') else F.cross_entropy
    seconds = train(model, x, y, a.epochs, a.batch_size, a.lr, torch.Generator().manual_seed(a.seed), orders=orders, loss_fn=loss_fn)
    print(json.dumps({
        'fixture': a.fixture, 'epochs': a.epochs, 'batchSize': a.batch_size, 'lr': a.lr, 'seed': a.seed,
        'trainExamples': len(x), 'testAccuracy': accuracy(model, tx, ty), 'trainSeconds': seconds,
        'examplesPerSecond': len(x) * a.epochs / seconds, 'torchVersion': torch.__version__,
        'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()
