/**
 * Models whose weights lie in files beside them (ONNX external data: `onnx.save(...,
 * save_as_external_data=True)`, large exports): read in whole from the model's folder wherever the
 * process runs, trained and saved as one file; a location outside the folder (absolute, `..`, a link
 * pointing out), a missing file and short or mis-sized data are refused by name.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { embedded } from '../../src/data/embedded.js';
import { tensorFromProto, tensorToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel, type ModelProto } from '../../src/graph/proto.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { runMain } from '../cli/helpers.js';
import { EXPORTED_DIR } from '../fixtures/exported/reference.js';
import { kilnError, tempDir } from '../train/helpers.js';
import { http, startServer } from '../serve/helpers.js';
import { Tensor } from '../../src/tensor.js';

const SOURCE = `${EXPORTED_DIR}/vit13.onnx`;

/**
 * The fixture with every initializer over 1 KiB moved to `dataFile` (offsets as onnx writes them), the
 * locations rewritten by `locate` when given.
 */
function externalized(dataFile: string, locate: (name: string) => string = () => dataFile): { model: Uint8Array; data: Uint8Array; moved: number } {
  const proto: ModelProto = decodeModel(readFileSync(SOURCE));
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let moved = 0;
  for (const t of proto.graph!.initializer!) {
    const raw = tensorToProto(t.name!, tensorFromProto(t)).rawData!;
    if (raw.length <= 1024) continue;
    chunks.push(raw);
    t.externalData = [
      { key: 'location', value: locate(t.name!) },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = 1;
    delete t.rawData;
    delete t.floatData;
    offset += raw.length;
    moved++;
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.length;
  }
  return { model: encodeModel(proto), data, moved };
}

describe('models with external data', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    t = await tempDir();
    await mkdir(t.path('model'));
    const { model, data, moved } = externalized('vit.onnx.data');
    assert.ok(moved >= 10, `${moved} initializers moved out`);
    await writeFile(t.path('model/vit.onnx'), model);
    await writeFile(t.path('model/vit.onnx.data'), data);
  });
  after(() => t.remove());

  it('load whole from the model’s folder (not the working directory): the same predictions, trained and saved as one file', async () => {
    assert.notEqual(process.cwd(), t.path('model'));
    const data = await embedded();
    const x = data.test.images.slice(0, 32);
    const original = await GraphModel.load(SOURCE);
    const model = await loadModel(t.path('model/vit.onnx'));
    assert.ok(model instanceof GraphModel, `a trainable GraphModel, got ${model.constructor.name}: ${'notTrainable' in model ? model.notTrainable : ''}`);
    assert.deepEqual(Array.from((await model.predict(x)).data as Float32Array), Array.from((await original.predict(x)).data as Float32Array));
    const file = await OnnxModel.load(t.path('model/vit.onnx'));
    assert.equal(file.proto.graph!.initializer!.filter((i) => i.dataLocation === 1).length, 0, 'every tensor read in');

    model.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
    await model.fit(data.train.images.slice(0, 128), data.train.labels.slice(0, 128), { epochs: 1, batchSize: 64, verbose: 0 });
    await model.save(t.path('tuned.onnx'));
    const saved = decodeModel(readFileSync(t.path('tuned.onnx')));
    assert.ok(saved.graph!.initializer!.every((i) => !i.externalData?.length && i.dataLocation !== 1), 'the saved file holds its weights');
    const reloaded = await GraphModel.load(t.path('tuned.onnx'));
    assert.deepEqual(Array.from((await reloaded.predict(x)).data as Float32Array), Array.from((await model.predict(x)).data as Float32Array));

    const cli = await runMain(['evaluate', t.path('model/vit.onnx'), '--dataset', 'embedded', '--json']);
    assert.equal(cli.code, 0, cli.err);
  });

  it('refuses a location outside the folder (absolute, .., a link pointing out), a missing file, and short or mis-sized data', async () => {
    const write = async (name: string, locate: (tensor: string) => string, data?: Uint8Array) => {
      const made = externalized('unused', locate);
      await writeFile(t.path(`model/${name}.onnx`), made.model);
      if (data) await writeFile(t.path(`model/${name}.data`), data);
      return t.path(`model/${name}.onnx`);
    };
    const { data } = externalized('vit.onnx.data');
    await assert.rejects(loadModel(await write('absolute', () => t.path('model/vit.onnx.data'))), kilnError('INVALID_DATA', 'outside the model\'s folder'));
    await assert.rejects(loadModel(await write('parent', () => '../model/vit.onnx.data')), kilnError('INVALID_DATA', "keeps its data at '../model/vit.onnx.data', outside the model's folder"));
    await writeFile(t.path('secret.bin'), data);
    await symlink(t.path('secret.bin'), t.path('model/link.data'));
    await assert.rejects(loadModel(await write('link', () => 'link.data')), kilnError('INVALID_DATA', "keeps its data at 'link.data', outside the model's folder"));
    await assert.rejects(loadModel(await write('missing', () => 'gone.data')), kilnError('FILE_NOT_FOUND', "the external data file 'gone.data' of tensor"));
    await assert.rejects(loadModel(await write('short', () => 'short.data', data.slice(0, data.length - 8))), kilnError('CORRUPT_FILE', "of 'short.data', which holds"));
    // Each tensor's declared length must be what its shape needs.
    const proto = decodeModel(readFileSync(t.path('model/vit.onnx')));
    const first = proto.graph!.initializer!.find((i) => i.dataLocation === 1)!;
    first.externalData = first.externalData!.map((e) => (e.key === 'length' ? { key: 'length', value: String(Number(e.value) - 4) } : e));
    await writeFile(t.path('model/sized.onnx'), encodeModel(proto));
    await assert.rejects(loadModel(t.path('model/sized.onnx')), kilnError('CORRUPT_FILE', `tensor '${first.name}' has`, 'needs'));
    // A folder, and a file whose name merely starts with two dots (inside the folder: read).
    await assert.rejects(loadModel(await write('folder', () => '.')), kilnError('INVALID_DATA', "keeps its data at '.', which is a folder"));
    await writeFile(t.path('model/..w.bin'), data);
    assert.ok((await loadModel(await write('dots', () => '..w.bin'))) instanceof GraphModel);
    // Bytes alone have no folder to read it from, whichever way they come.
    const bytes = readFileSync(t.path('model/vit.onnx'));
    await assert.rejects(loadModel(bytes), kilnError('INVALID_ARGUMENT', 'load the model from its path'));
    assert.throws(() => new OnnxModel(bytes, decodeModel(bytes)), kilnError('INVALID_ARGUMENT', 'load the model from its path'));
  });

  it('reads the external data of subgraphs (an If’s branches) too', async () => {
    await mkdir(t.path('branches'));
    const k = tensorToProto('k', new Tensor(Float32Array.from([1, 2, 3, 4]), [4], 'float32')).rawData!;
    await writeFile(t.path('branches/k.bin'), k);
    const branch = (name: string) => ({
      name,
      node: [{ opType: 'Add', input: ['x', 'k'], output: [`${name}_y`] }],
      initializer: [{ name: 'k', dataType: 1, dims: [4], dataLocation: 1, externalData: [{ key: 'location', value: 'k.bin' }] }],
      output: [{ name: `${name}_y`, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }],
    });
    const info = (name: string, elemType: number, dims: number[]) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
    await writeFile(
      t.path('branches/if.onnx'),
      encodeModel({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 13 }],
        graph: {
          name: 'if',
          node: [{ opType: 'If', input: ['cond'], output: ['y'], attribute: [{ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') }] }],
          input: [info('x', 1, [4]), info('cond', 9, [])],
          output: [info('y', 1, [4])],
        },
      }),
    );
    const model = await OnnxModel.load(t.path('branches/if.onnx'));
    const out = await model.run({ x: new Tensor(Float32Array.from([10, 20, 30, 40]), [4], 'float32'), cond: new Tensor(Uint8Array.of(1) as never, [], 'bool') });
    assert.deepEqual(Array.from(out.y!.data as Float32Array), [11, 22, 33, 44]);
    assert.throws(() => new OnnxModel(readFileSync(t.path('branches/if.onnx')), decodeModel(readFileSync(t.path('branches/if.onnx')))), kilnError('INVALID_ARGUMENT', "tensor 'k' keeps its data in an external file"));
  });

  it('serve from a model repository: a version keeps its external data beside its model.onnx', async () => {
    const repo = t.path('repository');
    await mkdir(`${repo}/vit/1`, { recursive: true });
    const { model, data } = externalized('weights.bin');
    await writeFile(`${repo}/vit/1/model.onnx`, model);
    await writeFile(`${repo}/vit/1/weights.bin`, data);
    const server = await startServer({ modelRepository: repo, pollIntervalMs: 0 });
    try {
      const x = (await embedded()).test.images.slice(0, 1);
      const pixels = Array.from(x.data as Float32Array);
      const reply = await http(server.url, 'POST', '/v2/models/vit/infer', { inputs: [{ name: 'input', shape: [1, 1, 28, 28], datatype: 'FP32', data: pixels }] });
      assert.equal(reply.status, 200, reply.text);
      const original = await OnnxModel.load(SOURCE);
      const want = Array.from((await original.predict(new Tensor(Float32Array.from(pixels), [1, 1, 28, 28], 'float32'))).data as Float32Array);
      assert.deepEqual(reply.json.outputs[0].data.map((v: number) => Math.fround(v)), want);
    } finally {
      await server.close();
    }
  });
});
