import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { augmentImages, augmentImagesAndLabels, randomCrop, randomCutout, randomHorizontalFlip } from '../../src/data/augment.js';
import { Random } from '../../src/random.js';
import { Tensor, tensor } from '../../src/tensor.js';
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

  it('randomCutout zeroes one size x size square per image (clipped at the borders) and leaves every other pixel', () => {
    const input = images();
    const size = 3;
    const out = randomCutout(input, size, new Random(4));
    assert.deepEqual(out.shape, input.shape);
    let clipped = 0;
    const centres = new Set<string>();
    for (let i = 0; i < N; i++) {
      const zeroed: [number, number][] = [];
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const v = at(out, i, y, x, 0);
          // Every channel of a pixel is kept or zeroed together.
          assert.equal(at(out, i, y, x, 1), v === 0 ? 0 : value(i, y, x, 1));
          if (v === 0) zeroed.push([y, x]);
          else assert.equal(v, value(i, y, x, 0));
        }
      assert.ok(zeroed.length > 0, `image ${i} has a zeroed patch`);
      // The zeroed pixels form one rectangle of at most size x size ...
      const ys = zeroed.map(([y]) => y);
      const xs = zeroed.map(([, x]) => x);
      const [top, bottom, left, right] = [Math.min(...ys), Math.max(...ys), Math.min(...xs), Math.max(...xs)];
      assert.equal(zeroed.length, (bottom - top + 1) * (right - left + 1), `image ${i}: a rectangle`);
      assert.ok(bottom - top < size && right - left < size);
      // ... which is the full square unless it touches a border.
      const full = bottom - top + 1 === size && right - left + 1 === size;
      if (!full) {
        clipped++;
        assert.ok(top === 0 || left === 0 || bottom === H - 1 || right === W - 1, `image ${i}: a partial square away from the borders`);
      }
      centres.add(`${top},${left}`);
    }
    assert.ok(clipped > 0 && clipped < N, `some squares are clipped at a border (${clipped} of ${N})`);
    assert.ok(centres.size > 8, `positions vary (${centres.size} distinct)`);
    // The input is untouched.
    assert.equal(at(input, 0, 0, 0, 0), value(0, 0, 0, 0));
  });

  it('randomCutout refuses sizes that are not positive integers', async () => {
    for (const size of [0, -1, 1.5, NaN]) await assertRejectsWith(() => randomCutout(images(), size, new Random()), 'INVALID_ARGUMENT', 'size');
  });

  it('is reproducible from the seed', () => {
    const options = { cropPadding: 1, horizontalFlip: true, cutout: 2 };
    const a = augmentImages(images(), options, new Random(5));
    const b = augmentImages(images(), options, new Random(5));
    const c = augmentImages(images(), options, new Random(6));
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
    assert.notDeepEqual(Array.from(a.data), Array.from(c.data));
  });

  it('rejects anything but [N, H, W, C]', async () => {
    await assertRejectsWith(() => randomCrop(tensor(new Float32Array(4), [2, 2]), 1, new Random()), 'INVALID_SHAPE', '[2, 2]');
  });

  it('augmentImagesAndLabels moves each label map exactly as its image (a label per pixel), the uncovered border labelled with the fill', () => {
    const options = { cropPadding: 2, horizontalFlip: true, cutout: 2 };
    // Labels name their pixel: (row, column) as row·W + column, in int64 as fit prepares them.
    const labels = new Tensor(BigInt64Array.from({ length: N * H * W }, (_, k) => BigInt(k % (H * W))), [N, H, W], 'int64');
    const moved = augmentImagesAndLabels(images(), labels, options, new Random(7), -100);
    // The images come out as augmentImages gives them from the same seed.
    assert.deepEqual(Array.from(moved.images.data), Array.from(augmentImages(images(), options, new Random(7)).data));
    const plain = augmentImages(images(), { cropPadding: 2, horizontalFlip: true }, new Random(7));
    let uncovered = 0;
    for (let i = 0; i < N; i++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const label = Number(moved.labels.data[(i * H + y) * W + x]!);
          // Channel 1 of the crop-and-flip image still says where the pixel came from (cutout may zero channel 0's square, not its labels).
          const source = at(plain, i, y, x, 1);
          if (source === 0) {
            assert.equal(label, -100, `image ${i} (${y}, ${x}) is border: the fill`);
            uncovered++;
          } else {
            const [row, column] = [Math.floor((source % 1000) / 100), Math.floor((source % 100) / 10)];
            assert.equal(label, row * W + column, `image ${i} (${y}, ${x}) shows pixel (${row}, ${column}), its label follows`);
          }
        }
      }
    }
    assert.ok(uncovered > 0, 'some crops uncovered a border');
    assert.deepEqual(moved.labels.shape, [N, H, W]);
  });

  it('augmentImagesAndLabels refuses labels that are not one per pixel of the images', async () => {
    const labels = new Tensor(new BigInt64Array(N * 2 * 2), [N, 2, 2], 'int64');
    await assertRejectsWith(() => augmentImagesAndLabels(images(), labels, { horizontalFlip: true }, new Random()), 'INVALID_SHAPE', `labels must be one per pixel of the images, [${N}, ${H}, ${W}], got [${N}, 2, 2]`);
  });
});
