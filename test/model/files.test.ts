/**
 * Model files that are missing, truncated, not ONNX at all, or carry a configuration Kiln cannot
 * rebuild; and saving, which must leave either the old file or the complete new one, never a torn or
 * temporary file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError, layers, loadModel, Random, sequential, Sequential, tensor } from '../../src/index.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { assertRejectsKiln, assertThrowsKiln, makeTempDir, randomInput } from './helpers.js';

const smallModel = (seed = 1) =>
  sequential({ seed, layers: [layers.conv2d({ filters: 2, kernelSize: 3, inputShape: [6, 6, 1], activation: 'relu' }), layers.flatten(), layers.dense({ units: 3 })] });

let temp: Awaited<ReturnType<typeof makeTempDir>>;
let saved: string;
let savedBytes: Uint8Array;

before(async () => {
  temp = await makeTempDir();
  saved = join(temp.dir, 'model.onnx');
  await smallModel().save(saved);
  savedBytes = await readFile(saved);
});
after(() => temp.remove());

/** Writes bytes next to the saved model and returns the path. */
async function fixture(name: string, bytes: Uint8Array | string): Promise<string> {
  const file = join(temp.dir, name);
  await writeFile(file, bytes);
  return file;
}

/** The saved model with its kiln.model configuration rewritten. */
async function withConfig(name: string, edit: (config: { layers: { className: string; config: Record<string, unknown> }[] }) => void): Promise<string> {
  const proto = decodeModel(savedBytes);
  const entry = proto.metadataProps!.find((m) => m.key === 'kiln.model')!;
  const config = JSON.parse(entry.value!);
  edit(config);
  entry.value = JSON.stringify(config);
  return fixture(name, encodeModel(proto));
}

/** NOT_ONNX or CORRUPT_FILE, naming the file. */
async function assertUnreadable(file: string, ...fragments: string[]): Promise<void> {
  await assert.rejects(
    () => loadModel(file),
    (e: unknown) => {
      assert.ok(e instanceof KilnError, `expected a KilnError, got ${String(e)}`);
      assert.ok(e.code === 'NOT_ONNX' || e.code === 'CORRUPT_FILE', `code ${e.code}: ${e.message}`);
      for (const f of [file, ...fragments]) assert.ok(e.message.includes(f), `message "${e.message}" should mention "${f}"`);
      return true;
    },
  );
}

describe('loading files that are not usable models', () => {
  it('a missing file is FILE_NOT_FOUND, naming the path', async () => {
    const missing = join(temp.dir, 'nope', 'missing.onnx');
    await assertRejectsKiln(() => loadModel(missing), 'FILE_NOT_FOUND', missing);
    await assertRejectsKiln(() => Sequential.load(missing), 'FILE_NOT_FOUND', missing);
  });

  it('a directory is NOT_ONNX', async () => {
    await assertRejectsKiln(() => loadModel(temp.dir), 'NOT_ONNX', temp.dir, 'directory');
  });

  it('an empty file is NOT_ONNX', async () => {
    await assertRejectsKiln(async () => loadModel(await fixture('empty.onnx', new Uint8Array(0))), 'NOT_ONNX', 'empty.onnx', 'empty');
  });

  it('a text file is refused, saying an ONNX model was expected', async () => {
    await assertUnreadable(await fixture('notes.onnx', 'This is not a model, just some notes.\nline two\n'), 'ONNX');
    await assertUnreadable(await fixture('config.onnx', JSON.stringify({ layers: [{ className: 'Dense' }] })), 'ONNX');
  });

  it('random bytes are refused', async () => {
    const rng = new Random(99);
    for (let trial = 0; trial < 5; trial++) {
      const bytes = new Uint8Array(64 + trial * 100);
      for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
      await assertUnreadable(await fixture(`random-${trial}.onnx`, bytes), 'ONNX');
    }
  });

  it('a truncated model is CORRUPT_FILE saying it is truncated, whatever the cut', async () => {
    for (const length of [1, 2, 16, Math.floor(savedBytes.length / 3), Math.floor(savedBytes.length / 2), savedBytes.length - 10, savedBytes.length - 1]) {
      const file = await fixture(`truncated-${length}.onnx`, savedBytes.subarray(0, length));
      await assertRejectsKiln(() => loadModel(file), 'CORRUPT_FILE', file, 'truncated');
    }
  });

  it('an initializer whose data does not fit its shape is CORRUPT_FILE', async () => {
    const proto = decodeModel(savedBytes);
    const kernel = proto.graph!.initializer!.find((t) => t.name === 'dense/kernel')!;
    kernel.rawData = kernel.rawData!.subarray(0, kernel.rawData!.length - 4);
    await assertRejectsKiln(async () => loadModel(await fixture('short-weight.onnx', encodeModel(proto))), 'CORRUPT_FILE', 'dense/kernel', 'needs');
  });

  it('a Kiln model missing one of its weights is CORRUPT_FILE, naming the weight', async () => {
    const proto = decodeModel(savedBytes);
    proto.graph!.initializer = proto.graph!.initializer!.filter((t) => t.name !== 'conv2d/bias');
    const file = await fixture('no-bias.onnx', encodeModel(proto));
    await assertRejectsKiln(() => loadModel(file), 'CORRUPT_FILE', file, "'conv2d/bias'");
  });

  it('an unknown layer class in the model configuration is UNKNOWN_LAYER, naming the file and layer', async () => {
    const file = await withConfig('lstm.onnx', (c) => {
      c.layers[1]!.className = 'LSTM';
    });
    await assertRejectsKiln(() => loadModel(file), 'UNKNOWN_LAYER', file, 'layer 1', '"LSTM"', 'Dense');
    const proto = await withConfig('ctor.onnx', (c) => {
      c.layers[2]!.className = 'constructor';
    });
    await assertRejectsKiln(() => loadModel(proto), 'UNKNOWN_LAYER', 'layer 2', '"constructor"');
  });

  it('a configuration that is not valid JSON, or not a kiln.sequential, is CORRUPT_FILE', async () => {
    const proto = decodeModel(savedBytes);
    proto.metadataProps!.find((m) => m.key === 'kiln.model')!.value = '{"format": "kiln.sequential", "layers": [';
    const file = await fixture('bad-json.onnx', encodeModel(proto));
    await assertRejectsKiln(() => loadModel(file), 'CORRUPT_FILE', file, 'not valid JSON');
    proto.metadataProps!.find((m) => m.key === 'kiln.model')!.value = '{"format": "keras.functional"}';
    const other = await fixture('other-format.onnx', encodeModel(proto));
    await assertRejectsKiln(() => loadModel(other), 'CORRUPT_FILE', 'kiln.sequential', '"keras.functional"');
  });

  it('a configuration with impossible layers is refused as the model is rebuilt', async () => {
    const file = await withConfig('no-input-shape.onnx', (c) => {
      delete c.layers[0]!.config.inputShape;
    });
    await assertRejectsKiln(() => loadModel(file), 'INVALID_SHAPE', 'inputShape');
  });
});

describe('predict refuses input of the wrong shape or type', () => {
  const model = smallModel();

  it('names the expected shape (batch first) and the shape found', async () => {
    await assertRejectsKiln(() => model.predict(tensor(new Float32Array(72), [2, 6, 6])), 'INVALID_SHAPE', '[null, 6, 6, 1]', '[2, 6, 6]');
    await assertRejectsKiln(() => model.predict(tensor(new Float32Array(36), [6, 6, 1])), 'INVALID_SHAPE', '[null, 6, 6, 1]', '[6, 6, 1]');
    await assertRejectsKiln(() => model.predict(randomInput([1, 6, 5, 1])), 'INVALID_SHAPE', '[null, 6, 6, 1]', '[1, 6, 5, 1]');
  });

  it('names the expected and found element type', async () => {
    await assertRejectsKiln(() => model.predict(tensor(new Int32Array(36), [1, 6, 6, 1])), 'INVALID_ARGUMENT', 'float32', 'int32');
  });

  it('refuses a batch size that is not a positive integer', async () => {
    await assertRejectsKiln(() => model.predict(randomInput([2, 6, 6, 1]), { batchSize: 0 }), 'INVALID_ARGUMENT', 'batchSize', '0');
  });

  it('setWeights refuses unknown names and wrong shapes without changing anything', () => {
    const before = Array.from(model.weights.get('dense/bias')!.data as Float32Array);
    assertThrowsKiln(() => model.setWeights({ 'dense/bias': tensor([1, 2, 3]), 'dense/gamma': tensor([1]) }), 'INVALID_ARGUMENT', "'dense/gamma'");
    assertThrowsKiln(() => model.setWeights({ 'dense/bias': tensor([1, 2]) }), 'INVALID_SHAPE', '[3]', '[2]');
    assert.deepEqual(Array.from(model.weights.get('dense/bias')!.data as Float32Array), before);
  });
});

describe('saving', () => {
  it('to a path in a missing directory throws IO_ERROR and writes nothing', async () => {
    const dir = join(temp.dir, 'save-missing');
    await mkdir(dir);
    const target = join(dir, 'does-not-exist', 'model.onnx');
    await assertRejectsKiln(() => smallModel().save(target), 'IO_ERROR', target);
    assert.deepEqual(await readdir(dir), []);
  });

  it('onto a path that is a directory throws IO_ERROR and removes its temporary file', async () => {
    const dir = join(temp.dir, 'save-onto-dir');
    await mkdir(join(dir, 'model.onnx'), { recursive: true });
    await assertRejectsKiln(() => smallModel().save(join(dir, 'model.onnx')), 'IO_ERROR', 'model.onnx');
    assert.deepEqual(await readdir(dir), ['model.onnx']);
    assert.deepEqual(await readdir(join(dir, 'model.onnx')), []);
  });

  it('over an existing model replaces it whole and leaves no temporary files', async () => {
    const dir = join(temp.dir, 'save-over');
    await mkdir(dir);
    const target = join(dir, 'model.onnx');
    const first = smallModel(1);
    const second = smallModel(2);
    await first.save(target);
    await second.save(target);
    assert.deepEqual(await readdir(dir), ['model.onnx']);
    assert.ok(Buffer.from(second.toOnnx()).equals(await readFile(target)), 'the file holds the second model, byte for byte');
    const x = randomInput([2, 6, 6, 1]);
    const loaded = (await loadModel(target)) as Sequential;
    assert.deepEqual(Array.from((await loaded.predict(x)).data), Array.from((await second.predict(x)).data));
    assert.notDeepEqual(Array.from((await loaded.predict(x)).data), Array.from((await first.predict(x)).data));
  });

  it('keeps user metadata through save and load', async () => {
    const model = smallModel();
    model.metadata.set('trained.epochs', '3');
    const target = join(temp.dir, 'with-metadata.onnx');
    await model.save(target);
    const loaded = (await loadModel(target)) as Sequential;
    assert.equal(loaded.metadata.get('trained.epochs'), '3');
    assert.equal(loaded.metadata.has('kiln.model'), false);
  });
});
