/**
 * bench/federated/starting-point.ts, the folder through which simulate.ts hands Kiln's initial weights
 * to the PyTorch reference: it round-trips the tutorial CNN's weights (names, order, shapes, values) and
 * the check logits; its index lists each weight's .npy in the model's order, and each .npy is a plain
 * NumPy file of that shape (what reference.py's np.load reads); a damaged folder is refused, naming
 * the file. (reference.py's own check, PyTorch's logits from these weights within 1e-4 of Kiln's, runs
 * in the bench, which needs Python; this test needs none.)
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FORMAT, INDEX_FILE, loadStartingPoint, saveStartingPoint } from '../../bench/federated/starting-point.js';
import { decodeNpy, encodeNpy } from '../../src/data/npy.js';
import { getWeights } from '../../src/federated/weights.js';
import { tutorialCnn } from '../../src/layers/presets.js';
import { Tensor } from '../../src/tensor.js';
import { Sequential } from '../../src/train/sequential.js';
import { isKilnError, makeTempDir } from '../model/helpers.js';

describe('bench/federated starting point', async () => {
  const temp = await makeTempDir('kiln-starting-point-');
  after(() => temp.remove());
  const weights = getWeights(new Sequential({ layers: tutorialCnn([28, 28, 1], 10), seed: 42 }));
  const logits = new Tensor(Float32Array.from({ length: 30 }, (_, i) => Math.sin(i) * 3), [3, 10], 'float32');

  it('round-trips the tutorial CNN: names in order, shapes and values, and the check logits', async () => {
    const dir = join(temp.dir, 'round-trip');
    await saveStartingPoint(dir, { weights, logits });
    const back = await loadStartingPoint(dir);
    assert.deepEqual(
      back.weights.map((w) => [w.name, w.dims]),
      weights.map((w) => [w.name, w.dims]),
    );
    assert.equal(back.weights.length, 10, 'five layers with kernel and bias');
    back.weights.forEach((w, i) => assert.deepEqual(w.data, weights[i]!.data, w.name));
    assert.deepEqual(back.logits.shape, [3, 10]);
    assert.deepEqual(back.logits.data, logits.data);
  });

  it("writes an index in the model's order and one plain .npy per weight, in Kiln's layouts", async () => {
    const dir = join(temp.dir, 'layout');
    await saveStartingPoint(dir, { weights, logits });
    const index = JSON.parse(await readFile(join(dir, INDEX_FILE), 'utf8'));
    assert.equal(index.format, FORMAT);
    assert.deepEqual(
      index.weights.map((e: { name: string }) => e.name),
      weights.map((w) => w.name),
    );
    // Conv kernels [filters, channels, kH, kW] (torch's Conv2d layout); Dense kernels [in, out], the
    // first one's inputs 64 channels × 3 × 3 in (channel, row, column) order.
    assert.deepEqual(index.weights[0].dims, [32, 1, 3, 3]);
    assert.deepEqual(index.weights[6].dims, [576, 64]);
    assert.deepEqual(index.weights[8].dims, [64, 10]);
    for (const [i, e] of index.weights.entries()) {
      const bytes = await readFile(join(dir, e.file));
      const t = decodeNpy(bytes, e.file);
      assert.equal(t.dtype, 'float32');
      assert.deepEqual(t.shape, e.dims, e.file);
      assert.deepEqual(t.data, weights[i]!.data, e.file);
      assert.match(new TextDecoder('latin1').decode(bytes.subarray(0, 128)), /'descr': '<f4', 'fortran_order': False/);
    }
  });

  it('refuses a folder of another format or a weight of the wrong shape, naming the file', async () => {
    const dir = join(temp.dir, 'damaged');
    await saveStartingPoint(dir, { weights, logits });
    const indexPath = join(dir, INDEX_FILE);
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    await writeFile(indexPath, JSON.stringify({ ...index, format: 'something-else' }));
    await assert.rejects(loadStartingPoint(dir), isKilnError('INVALID_DATA', INDEX_FILE, 'something-else'));
    await writeFile(indexPath, '{"format": ');
    await assert.rejects(loadStartingPoint(dir), isKilnError('INVALID_DATA', INDEX_FILE, 'not JSON'));
    await writeFile(indexPath, JSON.stringify(index));
    await writeFile(join(dir, index.weights[6].file), encodeNpy(new Tensor(new Float32Array(64 * 576), [64, 576], 'float32')));
    await assert.rejects(loadStartingPoint(dir), isKilnError('INVALID_SHAPE', index.weights[6].file, '[576, 64]', '[64, 576]'));
  });
});
