"""PyTorch reference for transfer learning from a PyTorch-exported fixture (test/fixtures/exported/resnet.onnx, or resnet_wide.onnx with --fixture):
  1. source: the resnet fixture, from exactly the weights its .onnx holds, trained 1 epoch on the
     Fashion-MNIST training images of classes 0-4 (its 10-way head, labels as they are);
  2. transfer: its head replaced by a fresh 5-way Linear (labels 5-9 remapped to 0-4), the backbone frozen
     with its BatchNorm layers in eval mode (the running statistics of step 1 are used, not updated),
     the head trained 1 epoch on classes 5-9;
  3. scratch: the same architecture with a 5-way head, freshly initialised (seeded), everything trained
     1 epoch on classes 5-9 (BatchNorm in train mode).
Accuracies are top-1 on the test images of the classes concerned (0-4 for the source, 5-9 otherwise).
Adam (torch defaults except lr), mean cross-entropy, shuffled with the seed. Prints one JSON object on
stdout, nothing else. Seconds cover each training loop only.

  /usr/bin/python3 bench/any-onnx/torch_transfer.py [--batch-size 64] [--lr 1e-3] [--seed 0] [--threads 2] [--limit N]

--limit N keeps the first N training images of each 5-class half (the test sets stay whole).
"""
import argparse
import json

from torch_common import accuracy, models, torch, train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=1e-3)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--limit', type=int, default=None)
    p.add_argument('--fixture', choices=['resnet', 'resnet_wide'], default='resnet')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)

    x, y = models.fashion_mnist('train')
    tx, ty = models.fashion_mnist('test')
    lo, hi, tlo, thi = y < 5, y >= 5, ty < 5, ty >= 5
    xa, ya, xb, yb = x[lo][:a.limit], y[lo][:a.limit], x[hi][:a.limit], y[hi][:a.limit] - 5
    txb, tyb = tx[thi], ty[thi] - 5

    model = models.load_fixture(a.fixture)
    model.train()
    source_s = train(model, xa, ya, 1, a.batch_size, a.lr, gen)
    source_acc = accuracy(model, tx[tlo], ty[tlo])

    model.head = torch.nn.Linear(model.head.in_features, 5)
    for q in model.parameters():
        q.requires_grad_(model.head.weight is q or model.head.bias is q)
    model.eval()  # the frozen backbone's BatchNorm uses its running statistics; the head is a Linear
    transfer_s = train(model.head, xb, yb, 1, a.batch_size, a.lr, gen, features=model.backbone)
    transfer_acc = accuracy(model, txb, tyb)

    scratch = models.ResNet(classes=5, width=model.head.in_features // 2)
    scratch.train()
    scratch_s = train(scratch, xb, yb, 1, a.batch_size, a.lr, gen)
    scratch_acc = accuracy(scratch, txb, tyb)

    print(json.dumps({
        'fixture': a.fixture, 'batchSize': a.batch_size, 'lr': a.lr, 'seed': a.seed,
        'source': {'classes': [0, 1, 2, 3, 4], 'epochs': 1, 'trainImages': len(xa), 'testAccuracy': source_acc, 'trainSeconds': source_s},
        'transfer': {'classes': [5, 6, 7, 8, 9], 'labels': 'class - 5 (5-way head)', 'epochs': 1, 'trainImages': len(xb),
                     'trained': 'a fresh 5-way head; backbone frozen, its BatchNorm in eval mode',
                     'testAccuracy': transfer_acc, 'trainSeconds': transfer_s},
        'scratch': {'classes': [5, 6, 7, 8, 9], 'labels': 'class - 5 (5-way head)', 'epochs': 1, 'trainImages': len(xb),
                    'testAccuracy': scratch_acc, 'trainSeconds': scratch_s},
        'torchVersion': torch.__version__, 'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()
