import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { augmentImages, randomCrop, randomHorizontalFlip } from '../../src/data/augment.js';
import { Random } from '../../src/random.js';
import { type Tensor, tensor } from '../../src/tensor.js';
import { assertRejectsWith } from './fixtures.js';

const N = 64;
const H = 5;
const W = 4;
const C = 2;

/** Pixel values encode (image, row, column, channel), all non-zero so padding shows as 0. */
function value(image: number, row: number, column: number, channel: number): number {
  return 1 + image * 1000 + row * 100 + column * 10 + channel;
}

function images(): Tensor<'float32'> {
  const data = new Float32Array(N * H * W * C);
  for (let i = 0; i < N; i++)
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) for (let c = 0; c < C; c++) data[((i * H + y) * W + x) * C + c] = value(i, y, x, c);
  return tensor(data, [N, H, W, C]);
}

function at(t: Tensor<'float32'>, i: number, y: number, x: number, c: number): number {
  return t.data[((i * H + y) * W + x) * C + c]!;
}

/** The shift (dy, dx) that explains an augmented image, found from one surviving pixel. */
function shiftOf(out: Tensor<'float32'>, i: number): [number, number] | undefined {
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const v = at(out, i, y, x, 0);
      if (v !== 0) {
        const sy = Math.floor(((v - 1) % 1000) / 100);
        const sx = Math.floor(((v - 1) % 100) / 10);
        return [sy - y, sx - x];
      }
    }
  return undefined;
}

describe('augmentation', () => {
  it('randomCrop shifts each image by at most the padding and fills the border with zeros', () => {
    const input = images();
    const out = randomCrop(input, 2, new Random(1));
    assert.deepEqual(out.shape, input.shape);
    const shifts = new Set<string>();
    for (let i = 0; i < N; i++) {
      const [dy, dx] = shiftOf(out, i)!;
      assert.ok(Math.abs(dy) <= 2 && Math.abs(dx) <= 2, `image ${i} shifted by (${dy}, ${dx})`);
      shifts.add(`${dy},${dx}`);
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < C; c++) {
            const sy = y + dy;
            const sx = x + dx;
            const inside = sy >= 0 && sy < H && sx >= 0 && sx < W;
            assert.equal(at(out, i, y, x, c), inside ? value(i, sy, sx, c) : 0);
          }
    }
    assert.ok(shifts.size > 10, `offsets vary across images (${shifts.size} distinct)`);
  });

  it('randomCrop with zero padding is the identity', () => {
    const input = images();
    assert.deepEqual(Array.from(randomCrop(input, 0, new Random(1)).data), Array.from(input.data));
  });

  it('randomHorizontalFlip mirrors about half the images and leaves the rest', () => {
    const input = images();
    const out = randomHorizontalFlip(input, new Random(2));
    let flipped = 0;
    for (let i = 0; i < N; i++) {
      const mirrored = at(out, i, 0, 0, 1) === value(i, 0, W - 1, 1);
      if (mirrored) flipped++;
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          for (let c = 0; c < C; c++) assert.equal(at(out, i, y, x, c), value(i, y, mirrored ? W - 1 - x : x, c));
    }
    assert.ok(flipped > N / 4 && flipped < (3 * N) / 4, `${flipped} of ${N} flipped`);
  });

  it('is reproducible from the seed', () => {
    const options = { cropPadding: 1, horizontalFlip: true };
    const a = augmentImages(images(), options, new Random(5));
    const b = augmentImages(images(), options, new Random(5));
    const c = augmentImages(images(), options, new Random(6));
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
    assert.notDeepEqual(Array.from(a.data), Array.from(c.data));
  });

  it('rejects anything but [N, H, W, C]', async () => {
    await assertRejectsWith(() => randomCrop(tensor(new Float32Array(4), [2, 2]), 1, new Random()), 'INVALID_SHAPE', '[2, 2]');
  });
});
