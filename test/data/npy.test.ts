import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { npy, saveNpy } from '../../src/data/npy.js';
import { type DType, tensor } from '../../src/tensor.js';
import { assertRejectsWith, bytesOf, makeTempDir, npyFile } from './fixtures.js';

describe('npy', () => {
  let root: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir: root, remove } = await makeTempDir()));
  after(() => remove());

  async function write(name: string, bytes: Uint8Array): Promise<string> {
    const path = join(root, name);
    await writeFile(path, bytes);
    return path;
  }

  it('reads <f4 in C order with its shape', async () => {
    const values = new Float32Array([0, 1.5, -2, 3.25, 4, 5]);
    const path = await write('f4.npy', npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", bytesOf(values)));
    const t = await npy(path);
    assert.equal(t.dtype, 'float32');
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(t.toArray(), [
      [0, 1.5, -2],
      [3.25, 4, 5],
    ]);
  });

  it('reads |u1, <i8, <i4, <f8 and |b1', async () => {
    const cases: [string, DType, ArrayBufferView, number[]][] = [
      ['|u1', 'uint8', new Uint8Array([0, 7, 255]), [0, 7, 255]],
      ['<i8', 'int64', new BigInt64Array([-3n, 0n, 1n << 40n]), [-3, 0, 2 ** 40]],
      ['<i4', 'int32', new Int32Array([-5, 0, 2147483647]), [-5, 0, 2147483647]],
      ['<f8', 'float64', new Float64Array([0.1, -1e300, 2]), [0.1, -1e300, 2]],
      ['|b1', 'bool', new Uint8Array([1, 0, 1]), [1, 0, 1]],
    ];
    for (const [descr, dtype, data, expected] of cases) {
      const path = await write(`${dtype}.npy`, npyFile(`{'descr': '${descr}', 'fortran_order': False, 'shape': (3,), }`, bytesOf(data)));
      const t = await npy(path);
      assert.equal(t.dtype, dtype, descr);
      assert.deepEqual(t.shape, [3]);
      assert.deepEqual(t.toArray(), expected, descr);
    }
  });

  it('reads a version 2.0 header, a 0-d array and Python 2 long dimensions', async () => {
    const v2 = await write('v2.npy', npyFile("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 1), }", bytesOf(new Int32Array([4, 5])), 2));
    assert.deepEqual((await npy(v2)).toArray(), [[4], [5]]);
    const scalar = await write('scalar.npy', npyFile("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", bytesOf(new Float64Array([7]))));
    const s = await npy(scalar);
    assert.deepEqual(s.shape, []);
    assert.equal(s.data[0], 7);
    const py2 = await write('py2.npy', npyFile("{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 2L), }", new Uint8Array([1, 2, 3, 4])));
    assert.deepEqual((await npy(py2)).shape, [2, 2]);
  });

  it('saveNpy writes what NumPy writes, and npy reads it back for every dtype', async () => {
    const path = join(root, 'saved.npy');
    await saveNpy(path, tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]));
    const bytes = new Uint8Array(await readFile(path));
    assert.deepEqual(Array.from(bytes.subarray(0, 8)), [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
    const headerLength = bytes[8]! | (bytes[9]! << 8);
    assert.equal((10 + headerLength) % 64, 0, 'data starts 64-byte aligned');
    const header = new TextDecoder().decode(bytes.subarray(10, 10 + headerLength));
    assert.match(header, /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(3, 2\), \} *\n$/);

    const samples = [
      tensor(new Float32Array([1.5, -2]), [2, 1]),
      tensor(new Float64Array([Math.PI]), [1]),
      tensor(new Int32Array([-1, 2, -3, 4]), [2, 2]),
      tensor(new BigInt64Array([-(2n ** 62n), 5n]), [2]),
      tensor(new Uint8Array([0, 128, 255]), [3]),
      tensor(new Int8Array([-128, 127]), [2]),
      tensor(new Uint8Array([1, 0]), [2], 'bool'),
      tensor(new Float32Array([42]), []),
      tensor(new Float32Array(0), [0, 4]),
    ];
    for (const [i, sample] of samples.entries()) {
      const file = join(root, `roundtrip-${i}.npy`);
      await saveNpy(file, sample);
      const back = await npy(file);
      assert.equal(back.dtype, sample.dtype);
      assert.deepEqual(back.shape, sample.shape);
      assert.deepEqual(Array.from(back.data as ArrayLike<unknown>), Array.from(sample.data as ArrayLike<unknown>));
    }
  });

  it('saveNpy writes a tensor that is a view into a larger buffer', async () => {
    const whole = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), [3, 2]);
    const path = join(root, 'view.npy');
    await saveNpy(path, whole.slice(1, 3));
    assert.deepEqual((await npy(path)).toArray(), [
      [3, 4],
      [5, 6],
    ]);
  });

  describe('rejects malformed files', () => {
    it('fortran order', async () => {
      const path = await write('fortran.npy', npyFile("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", new Uint8Array(16)));
      await assertRejectsWith(npy(path), 'INVALID_DATA', path, 'fortran_order True', 'C-order');
    });

    it('unsupported dtypes', async () => {
      for (const descr of ['>f4', '<u2', '<c8', '<U5']) {
        const path = await write(`dtype-${descr.slice(1)}.npy`, npyFile(`{'descr': '${descr}', 'fortran_order': False, 'shape': (1,), }`, new Uint8Array(8)));
        await assertRejectsWith(npy(path), 'INVALID_DATA', path, `'${descr}'`, '<f4');
      }
      const structured = await write('structured.npy', npyFile("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4)));
      await assertRejectsWith(npy(structured), 'INVALID_DATA', structured, 'structured');
    });

    it('truncated data', async () => {
      const path = await write('short.npy', npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", new Uint8Array(12)));
      await assertRejectsWith(npy(path), 'CORRUPT_FILE', path, 'truncated', 'needs 40 data bytes', 'found 12');
    });

    it('a truncated header', async () => {
      const full = npyFile("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(4));
      const path = await write('short-header.npy', full.subarray(0, 40));
      await assertRejectsWith(npy(path), 'CORRUPT_FILE', path, 'header');
    });

    it('a wrong magic string', async () => {
      const path = await write('not.npy', new TextEncoder().encode('PK\x03\x04 this is a zip, maybe an .npz'));
      await assertRejectsWith(npy(path), 'CORRUPT_FILE', path, 'NUMPY', '50 4b 03 04');
    });

    it('a header without a shape', async () => {
      const path = await write('no-shape.npy', npyFile("{'descr': '<f4', 'fortran_order': False, }", new Uint8Array(4)));
      await assertRejectsWith(npy(path), 'CORRUPT_FILE', path, "'shape'");
    });

    it('a missing file', async () => {
      const path = join(root, 'absent.npy');
      await assertRejectsWith(npy(path), 'FILE_NOT_FOUND', path);
    });
  });
});
