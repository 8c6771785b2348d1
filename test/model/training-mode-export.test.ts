/**
 * Files exported in training mode (torch.onnx.export(..., training=TrainingMode.TRAINING)), written
 * here from the ResNet fixture exactly as PyTorch 1.13 writes them (checked against its exports):
 * every BatchNormalization with its four statistics outputs at opset 13, or with training_mode = 1
 * and two at opset 15, and a Dropout before the head fed a constant training_mode of true. Such a
 * model predicts, evaluates and is saved as model.eval() runs it — running statistics, no dropout —
 * and trains as model.train() does, its Dropout dropping units from a seeded generator. And a file
 * exported with export_params=False, which stores no weights, is refused by name.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { tensorToProto } from '../../src/graph/onnx-io.js';
import { AttributeType, type ModelProto } from '../../src/graph/proto.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { loadModel } from '../../src/train/load.js';
import { sgd } from '../../src/train/optimizers.js';
import { fixtureProto, images, maxAbsDiff, node } from '../optimize/prune/graph-helpers.js';
import { assertRejectsKiln, makeTempDir } from './helpers.js';

const LABELS = new Tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32');

/** The ResNet fixture as a training-mode export at `opset` (13: statistics outputs; 15: training_mode = 1). */
function trainingExport(opset: 13 | 15): ModelProto {
  const proto = fixtureProto('resnet');
  const g = proto.graph!;
  const nodes = (g.node ?? []).map((n) => {
    if (n.opType !== 'BatchNormalization') return n;
    const y = n.output![0]!;
    const extra = opset === 13 ? ['running_mean', 'running_var', 'saved_mean', 'saved_var'] : ['running_mean', 'running_var'];
    const attribute = opset === 15 ? [...(n.attribute ?? []), { name: 'training_mode', type: 2, i: 1 }] : n.attribute;
    return { ...n, output: [y, ...extra.map((s) => `${y}/${s}`)], attribute };
  });
  // Dropout(0.5) between Flatten and the head, its ratio and mode as PyTorch writes them: Constant nodes.
  const head = nodes.findIndex((n) => n.opType === 'Gemm');
  const flat = nodes[head]!.input![0]!;
  const constant = (name: string, t: Tensor) => ({ opType: 'Constant', name, output: [name], attribute: [{ name: 'value', type: AttributeType.TENSOR, t: tensorToProto(name, t) }] });
  const dropout = [
    constant('/drop/ratio', new Tensor(Float32Array.of(0.5), [], 'float32')),
    constant('/drop/mode', new Tensor(Uint8Array.of(1), [], 'bool')),
    node('Dropout', [flat, '/drop/ratio', '/drop/mode'], ['/drop/out', '/drop/mask'], {}, '/drop/Dropout'),
  ];
  nodes[head] = { ...nodes[head]!, input: ['/drop/out', ...nodes[head]!.input!.slice(1)] };
  nodes.splice(head, 0, ...dropout);
  return { ...proto, opsetImport: [{ domain: '', version: opset }], graph: { ...g, node: nodes } };
}

describe('a model exported in training mode', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let evalMode: GraphModel;
  const x = images(16, [28, 28, 1]);
  before(async () => {
    temp = await makeTempDir('kiln-training-mode-');
    evalMode = await GraphModel.fromProto(fixtureProto('resnet'), 'resnet.onnx');
  });
  after(() => temp.remove());

  for (const opset of [13, 15] as const) {
    it(`opset ${opset}: predicts and evaluates as the eval-mode export does, at any batch size`, async () => {
      const model = await GraphModel.fromProto(trainingExport(opset), `train${opset}.onnx`);
      const want = (await evalMode.predict(x)).data as Float32Array;
      assert.ok(maxAbsDiff((await model.predict(x)).data as Float32Array, want) < 1e-5);
      // Batch statistics would make one row's answer depend on the rows beside it.
      const alone = (await model.predict(x.slice(0, 1))).data as Float32Array;
      assert.ok(maxAbsDiff(alone, want.slice(0, 10)) < 1e-5);
      for (const m of [model, evalMode]) m.compile({ optimizer: sgd({ learningRate: 0.01 }), loss: 'sparseCategoricalCrossentropy' });
      const [got, expected] = [await model.evaluate(x, LABELS), await evalMode.evaluate(x, LABELS)];
      assert.ok(Math.abs(got.loss - expected.loss) < 1e-5, `${got.loss} against ${expected.loss}`);
    });

    it(`opset ${opset}: trains, and is saved in inference form that ONNX Runtime runs as the model predicts`, async () => {
      const model = await GraphModel.fromProto(trainingExport(opset), `train${opset}.onnx`);
      model.compile({ optimizer: sgd({ learningRate: 0.05 }), loss: 'sparseCategoricalCrossentropy' });
      await model.fit(x, LABELS, { epochs: 1, batchSize: 8, verbose: 0, shuffle: false });
      const file = join(temp.dir, `train${opset}.kiln.onnx`);
      await model.save(file);
      const saved = await OnnxModel.load(file);
      const g = saved.proto.graph!;
      for (const n of g.node!.filter((m) => m.opType === 'BatchNormalization')) {
        assert.equal(n.output!.length, 1, `${n.name} keeps only its output`);
        assert.ok(!(n.attribute ?? []).some((a) => a.name === 'training_mode'), `${n.name} has no training_mode`);
      }
      const drop = g.node!.find((n) => n.opType === 'Dropout')!;
      assert.deepEqual(drop.input, ['/Flatten_output_0', '/drop/ratio'], 'the Dropout is kept, in inference form');
      const nchw = new Tensor(Float32Array.from({ length: 16 * 784 }, (_, i) => (x.data as Float32Array)[i]!), [16, 1, 28, 28], 'float32');
      const ran = (await saved.run({ input: nchw })).logits!.data as Float32Array;
      assert.ok(maxAbsDiff(ran, (await model.predict(x)).data as Float32Array) < 1e-5);
    });
  }

  it('an export listing its constants among the graph inputs (keep_initializers_as_inputs) is saved without the dropped flag', async () => {
    const proto = trainingExport(13);
    const g = proto.graph!;
    // The Dropout's flag as an initializer the graph also lists as an input, as older exports write it.
    const nodes = g.node!.filter((n) => n.name !== '/drop/mode');
    const flag = tensorToProto('/drop/mode', new Tensor(Uint8Array.of(1), [], 'bool'));
    const asInput = { name: '/drop/mode', type: { tensorType: { elemType: 9, shape: { dim: [] } } } };
    const listed: ModelProto = { ...proto, graph: { ...g, node: nodes, initializer: [...g.initializer!, flag], input: [...g.input!, asInput] } };
    const model = await GraphModel.fromProto(listed, 'listed.onnx');
    const file = join(temp.dir, 'listed.kiln.onnx');
    await model.save(file);
    const saved = await OnnxModel.load(file);
    assert.deepEqual(saved.proto.graph!.input!.map((i) => i.name), ['input']);
    assert.ok(!saved.proto.graph!.initializer!.some((t) => t.name === '/drop/mode'));
    assert.ok((await loadModel(file)) instanceof GraphModel, 'the saved file trains again');
  });

  it('the Dropout drops units in training, from the model seed (the same seed, the same masks)', async () => {
    const losses: number[] = [];
    for (const seed of [1, 1, 2]) {
      const model = await GraphModel.fromProto(trainingExport(13), 'train13.onnx', { seed });
      model.compile({ optimizer: sgd({ learningRate: 1e-30 }), loss: 'sparseCategoricalCrossentropy' });
      const step = model.buildGraph({ training: true }).graph;
      const d = step.nodes.find((n) => n.opType === 'Dropout')!;
      assert.equal(d.inputs.length, 3);
      assert.equal(Number(step.constantValue(d.inputs[2]!)!.data[0]), 1, 'training_mode true');
      assert.equal(typeof d.attrs.seed, 'number');
      const h = await model.fit(x, LABELS, { epochs: 1, batchSize: 16, verbose: 0, shuffle: false });
      losses.push(h.history.loss![0]!);
    }
    assert.equal(losses[0], losses[1], 'one seed, one mask');
    // Nothing else in the step is random (BatchNorm's batch statistics are the same for both seeds).
    assert.notEqual(losses[0], losses[2], 'another seed, other masks: the Dropout is active');
  });
});

describe('a file exported with export_params=False (its weights are graph inputs)', () => {
  it('is refused by name: no weights stored, the inputs read as weights listed, the export flag suggested', async () => {
    const proto = fixtureProto('resnet');
    const g = proto.graph!;
    const asInputs = (g.initializer ?? []).map((t) => ({ name: t.name, type: { tensorType: { elemType: t.dataType, shape: { dim: (t.dims ?? []).map((d) => ({ dimValue: d })) } } } }));
    const weightless: ModelProto = { ...proto, graph: { ...g, initializer: [], input: [...(g.input ?? []), ...asInputs] } };
    await assertRejectsKiln(() => GraphModel.fromProto(weightless, 'noparams.onnx'), 'INVALID_ARGUMENT', "'noparams.onnx' stores no weights", "'stem.0.0.weight'", 'export_params=True');
  });
});
