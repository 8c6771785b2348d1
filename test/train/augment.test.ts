/**
 * fit({augment}): each training batch is augmented as it is drawn (random crop after zero padding,
 * horizontal flip), from fit's seeded generator. The batches are observed through extraFeeds, which
 * receives exactly the images the step is fed.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { layers, losses, optimizers, sequential, Random, Tensor } from '../../src/index.js';
import type { AugmentOptions } from '../../src/data/augment.js';
import { assertRejectsKiln } from '../model/helpers.js';

const [N, H, W] = [24, 5, 4];

function images(): Tensor<'float32'> {
  const rng = new Random(3);
  return new Tensor(Float32Array.from({ length: N * H * W }, () => rng.next() + 0.5), [N, H, W, 1], 'float32');
}

function model() {
  const m = sequential({ seed: 1, layers: [layers.flatten({ inputShape: [H, W, 1] }), layers.dense({ units: 2 })] });
  m.compile({ optimizer: optimizers.sgd({ learningRate: 0.01 }), loss: losses.sparseCategoricalCrossentropy({ fromLogits: true }) });
  return m;
}

/** Every batch fit fed, with the example indices it came from. */
async function fedBatches(augment: AugmentOptions | undefined, seed = 7, x = images()) {
  const seen: { indices: number[]; x: Float32Array }[] = [];
  const y = new Tensor(Int32Array.from({ length: N }, (_, i) => i % 2), [N], 'int32');
  await model().fit(x, y, { epochs: 2, batchSize: 8, seed, verbose: 0, augment, extraFeeds: (indices, bx) => {
    seen.push({ indices: Array.from(indices), x: Float32Array.from(bx.data as Float32Array) });
    return {};
  } });
  return seen;
}

const image = (data: Float32Array, i: number) => data.subarray(i * H * W, (i + 1) * H * W);
function mirrored(img: Float32Array): Float32Array {
  const out = new Float32Array(img.length);
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) out[r * W + c] = img[r * W + (W - 1 - c)]!;
  return out;
}

describe('fit with augment', () => {
  const x = images();
  const source = x.data as Float32Array;

  it('without augment the step sees the training images unchanged', async () => {
    for (const b of await fedBatches(undefined)) b.indices.forEach((row, i) => assert.deepEqual(image(b.x, i), image(source, row)));
  });

  it('horizontalFlip feeds each image either as it is or mirrored, and both happen', async () => {
    let flipped = 0;
    let kept = 0;
    for (const b of await fedBatches({ horizontalFlip: true })) {
      b.indices.forEach((row, i) => {
        const fed = image(b.x, i);
        const original = image(source, row);
        if (fed.every((v, k) => v === original[k])) kept++;
        else {
          assert.deepEqual(fed, mirrored(original), `image ${row} is neither itself nor its mirror`);
          flipped++;
        }
      });
    }
    assert.ok(flipped >= 10 && kept >= 10, `flipped ${flipped}, kept ${kept} of 48`);
  });

  it('cropPadding shifts each image by at most the padding, filling with zeros', async () => {
    let shifted = 0;
    for (const b of await fedBatches({ cropPadding: 1 })) {
      b.indices.forEach((row, i) => {
        const fed = image(b.x, i);
        const original = image(source, row);
        // Find the shift (dy, dx) in [-1, 1]² that explains the fed image.
        const fits = [-1, 0, 1].flatMap((dy) => [-1, 0, 1].map((dx) => [dy, dx] as const)).filter(([dy, dx]) => {
          for (let r = 0; r < H; r++) {
            for (let c = 0; c < W; c++) {
              const [sr, sc] = [r + dy, c + dx];
              const want = sr >= 0 && sr < H && sc >= 0 && sc < W ? original[sr * W + sc]! : 0;
              if (fed[r * W + c] !== want) return false;
            }
          }
          return true;
        });
        assert.equal(fits.length, 1, `image ${row}: no single shift explains it`);
        if (fits[0]![0] !== 0 || fits[0]![1] !== 0) shifted++;
      });
    }
    assert.ok(shifted >= 20, `only ${shifted} of 48 images were shifted`);
  });

  it('is reproducible from the seed and changes with it', async () => {
    const a = await fedBatches({ cropPadding: 1, horizontalFlip: true }, 7);
    const b = await fedBatches({ cropPadding: 1, horizontalFlip: true }, 7);
    const c = await fedBatches({ cropPadding: 1, horizontalFlip: true }, 8);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.map((s) => s.x), c.map((s) => s.x));
  });

  it('refuses augment on inputs that are not images', async () => {
    const m = sequential({ layers: [layers.dense({ units: 2, inputShape: [3] })] });
    m.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' });
    await assertRejectsKiln(
      () => m.fit(new Tensor(new Float32Array(12), [4, 3], 'float32'), new Tensor(Int32Array.of(0, 1, 0, 1), [4], 'int32'), { verbose: 0, augment: { horizontalFlip: true } }),
      'INVALID_SHAPE',
      'augment works on images',
    );
  });
});
