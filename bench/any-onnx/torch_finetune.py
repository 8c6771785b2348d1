"""PyTorch reference for fine-tuning a PyTorch-exported fixture (test/fixtures/exported/NAME.onnx):
the same architecture, starting from exactly the weights (and BatchNorm running statistics) the .onnx
holds, trained on Fashion-MNIST (Debian's dataset-fashion-mnist; pixels / 255, NCHW) with Adam (torch
defaults except lr) and mean cross-entropy, shuffled with the seed; then top-1 accuracy on the 10,000
test images. Prints one JSON object on stdout, nothing else:
{fixture, epochs, batchSize, lr, seed, trainImages, testAccuracy, trainSeconds, imagesPerSecond, torchVersion, threads}
trainSeconds and imagesPerSecond cover the training loop only (no data loading, no evaluation).

  /usr/bin/python3 bench/any-onnx/torch_finetune.py --fixture resnet --epochs 1 --batch-size 64 --lr 1e-3 --seed 0 [--threads 2] [--limit N] [--order FILE]

--fixture segnet (the segmentation fixture) labels every pixel as models.segment_labels does and
trains and scores over the pixels; --fixture vol3d (3-D convolutions) reads the images as clips
(models.clips: 4 frames, frame t moved t pixels right). --limit N trains on the first N training images (the test set stays whole). For speed figures run it as
bench/train runs its reference: LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-pthread OPENBLAS_NUM_THREADS=1.
"""
import argparse
import json

from torch_common import accuracy, models, torch, train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--fixture', required=True, choices=['resnet', 'resnet_fused', 'mlp', 'vit13', 'vit17', 'dwsep', 'resnet_wide', 'vit_wide', 'segnet', 'vol3d'])
    p.add_argument('--epochs', type=int, required=True)
    p.add_argument('--batch-size', type=int, required=True)
    p.add_argument('--lr', type=float, required=True)
    p.add_argument('--seed', type=int, required=True)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--limit', type=int, default=None)
    p.add_argument('--order', default=None, help='little-endian int32 file: the batch order of each epoch (epochs x images)')
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = models.load_fixture(a.fixture)
    x, y = models.fashion_mnist('train', limit=a.limit)
    tx, ty = models.fashion_mnist('test')
    if a.fixture == 'segnet':  # a class per pixel: cross-entropy and accuracy over every pixel
        y, ty = models.segment_labels(x, y), models.segment_labels(tx, ty)
    if a.fixture == 'vol3d':  # volumes: the images as clips N x 1 x 4 x 28 x 28
        x, tx = models.clips(x), models.clips(tx)
    model.train()
    orders = None
    if a.order is not None:
        with open(a.order, 'rb') as f:
            flat = torch.frombuffer(bytearray(f.read()), dtype=torch.int32).long()
        orders = flat.reshape(a.epochs, len(x))
    seconds = train(model, x, y, a.epochs, a.batch_size, a.lr, torch.Generator().manual_seed(a.seed), orders=orders)
    print(json.dumps({
        'fixture': a.fixture, 'epochs': a.epochs, 'batchSize': a.batch_size, 'lr': a.lr, 'seed': a.seed,
        'trainImages': len(x), 'testAccuracy': accuracy(model, tx, ty), 'trainSeconds': seconds,
        'imagesPerSecond': len(x) * a.epochs / seconds, 'torchVersion': torch.__version__,
        'threads': torch.get_num_threads(),
    }))


if __name__ == '__main__':
    main()
