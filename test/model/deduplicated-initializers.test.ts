/**
 * PyTorch's exporter merges initializers that are equal by value (eval-mode exports, its default): a
 * freshly built network's BatchNorm γ of ones, β of zeros and running statistics become one tensor
 * each, every other use an Identity of it. A GraphModel gives each use its own parameter again, so the
 * file trains exactly as the same network written without the merging; equal random weights (a tied
 * head) stay one.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensorToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, type ModelProto, type NodeProto } from '../../src/graph/proto.js';
import { separateEqualInitializers } from '../../src/model/deduplicated-initializers.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { images, model, node, weight } from '../optimize/prune/graph-helpers.js';

const fill = (shape: number[], v: number) => new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v), shape, 'float32');
const BN = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/** Conv → BatchNorm → Relu, twice, → GlobalAveragePool → Flatten → Gemm; each BatchNorm's own tensors, freshly initialized. */
function network(): ModelProto {
  const bn = (k: number, x: string) => node('BatchNormalization', [x, ...BN.map((p) => `bn${k}.${p}`)], [`b${k}`], { epsilon: 1e-5, momentum: 0.9 });
  const weights: Record<string, Tensor> = { 'conv1.weight': weight([4, 1, 3, 3], 1), 'conv2.weight': weight([4, 4, 3, 3], 2), 'fc.weight': weight([10, 4], 3), 'fc.bias': fill([10], 0) };
  for (const k of [1, 2]) Object.assign(weights, { [`bn${k}.weight`]: fill([4], 1), [`bn${k}.bias`]: fill([4], 0), [`bn${k}.running_mean`]: fill([4], 0), [`bn${k}.running_var`]: fill([4], 1) });
  return model([1, 28, 28], 'logits', 10, [
    node('Conv', ['input', 'conv1.weight'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    bn(1, 'c1'),
    node('Relu', ['b1'], ['r1']),
    node('Conv', ['r1', 'conv2.weight'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
    bn(2, 'c2'),
    node('Relu', ['b2'], ['r2']),
    node('GlobalAveragePool', ['r2'], ['g']),
    node('Flatten', ['g'], ['f']),
    node('Gemm', ['f', 'fc.weight', 'fc.bias'], ['logits'], { transB: 1 }),
  ], weights);
}

/** The same network as torch.onnx.export writes it: one tensor of ones and one of zeros, every other use an Identity of them. */
function deduplicated(): ModelProto {
  const proto = network();
  const g = proto.graph!;
  const sourceOf: Record<string, string> = { 'bn1.running_var': 'bn1.weight', 'bn2.weight': 'bn1.weight', 'bn2.running_var': 'bn1.weight', 'bn1.running_mean': 'bn1.bias', 'bn2.bias': 'bn1.bias', 'bn2.running_mean': 'bn1.bias', 'fc.bias': 'bn1.bias' };
  // fc.bias has 10 elements, bn1.bias 4: equal values of another shape are not merged.
  delete sourceOf['fc.bias'];
  g.initializer = g.initializer!.filter((t) => !(t.name! in sourceOf));
  const identities: NodeProto[] = Object.entries(sourceOf).map(([target, source]) => ({ name: `Identity_${target}`, opType: 'Identity', input: [source], output: [target] }));
  g.node = [...identities, ...g.node!];
  return proto;
}

describe("PyTorch's merged initializers", () => {
  it('each Identity of a constant fill becomes an initializer of its own, named as PyTorch names it', () => {
    const separated = separateEqualInitializers(deduplicated());
    assert.equal(separated.graph!.node!.filter((n) => n.opType === 'Identity').length, 0);
    const names = separated.graph!.initializer!.map((t) => t.name).sort();
    assert.deepEqual(names, network().graph!.initializer!.map((t) => t.name).sort());
    const plain = separateEqualInitializers(network());
    assert.equal(plain, separateEqualInitializers(plain), 'a file without merged initializers is returned as it is');
  });

  it('an Identity of a random weight (a tied head) is left as it is', () => {
    const proto = deduplicated();
    proto.graph!.initializer!.push(tensorToProto('embed', weight([6, 4], 9)));
    proto.graph!.node!.unshift({ name: 'tie', opType: 'Identity', input: ['embed'], output: ['head'] });
    const separated = separateEqualInitializers(proto);
    assert.deepEqual(separated.graph!.node!.filter((n) => n.opType === 'Identity').map((n) => n.name), ['tie']);
  });

  it("the same weight of two layers of a stack (nn.TransformerEncoder's deep copies, equal in an untrained export) is separated: by its name, or a folded weight's by the nodes reading it", () => {
    const proto = model([4], 'logits', 3, [
      { name: 'copy_named', opType: 'Identity', input: ['layers.0.fc.weight'], output: ['layers.1.fc.weight'] },
      { name: 'copy_folded', opType: 'Identity', input: ['onnx::MatMul_7'], output: ['onnx::MatMul_9'] },
      { ...node('Gemm', ['input', 'layers.0.fc.weight'], ['h0'], { transB: 1 }), name: '/layers.0/fc/Gemm' },
      { ...node('MatMul', ['h0', 'onnx::MatMul_7'], ['m0']), name: '/layers.0/proj/MatMul' },
      { ...node('Gemm', ['m0', 'layers.1.fc.weight'], ['h1'], { transB: 1 }), name: '/layers.1/fc/Gemm' },
      { ...node('MatMul', ['h1', 'onnx::MatMul_9'], ['m1']), name: '/layers.1/proj/MatMul' },
      { ...node('Gemm', ['m1', 'head.weight'], ['logits'], { transB: 1 }), name: '/head/Gemm' },
    ], { 'layers.0.fc.weight': weight([4, 4], 1), 'onnx::MatMul_7': weight([4, 4], 2), 'head.weight': weight([3, 4], 3) });
    const separated = separateEqualInitializers(proto);
    assert.deepEqual(separated.graph!.node!.filter((n) => n.opType === 'Identity'), []);
    assert.deepEqual(separated.graph!.initializer!.map((t) => t.name).sort(), ['head.weight', 'layers.0.fc.weight', 'layers.1.fc.weight', 'onnx::MatMul_7', 'onnx::MatMul_9']);
    // Another module's copy (a head tied to an embedding) stays one weight.
    const tied = model([4], 'logits', 3, [
      { name: 'tie', opType: 'Identity', input: ['layers.0.fc.weight'], output: ['head.weight'] },
      { ...node('Gemm', ['input', 'layers.0.fc.weight'], ['h0'], { transB: 1 }), name: '/layers.0/fc/Gemm' },
      { ...node('Gemm', ['h0', 'head.weight'], ['logits'], { transB: 1 }), name: '/head/Gemm' },
    ], { 'layers.0.fc.weight': weight([4, 4], 1) });
    assert.deepEqual(separateEqualInitializers(tied).graph!.node!.filter((n) => n.opType === 'Identity').map((n) => n.name), ['tie']);
  });

  it('the merged file trains exactly as the network written without merging: every layer its own γ, β and statistics', async () => {
    const x = images(32, [28, 28, 1], 6);
    const y = new Tensor(Int32Array.from({ length: 32 }, (_, i) => i % 10), [32], 'int32');
    const trained = [];
    for (const proto of [deduplicated(), network()]) {
      const m = await GraphModel.fromProto(proto, 'net.onnx', { layout: 'nchw', seed: 1 });
      m.compile({ optimizer: 'adam', loss: 'sparseCategoricalCrossentropy' });
      await m.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, shuffle: false });
      trained.push(m);
    }
    const [merged, plain] = trained as [GraphModel, GraphModel];
    assert.deepEqual(merged.countParams(), plain.countParams());
    for (const [name, t] of plain.weights) assert.deepEqual(Array.from(merged.weights.get(name)!.data as Float32Array), Array.from(t.data as Float32Array), name);
    const saved = new Map(decodeModel(merged.toOnnx()).graph!.initializer!.map((t) => [t.name, t]));
    for (const k of [1, 2]) for (const p of BN) assert.ok(saved.has(`bn${k}.${p}`), `bn${k}.${p} saved under its own name`);
    const value = (name: string) => Array.from(merged.weights.get(name)!.data as Float32Array);
    assert.notDeepEqual(value('bn1.weight'), value('bn2.weight'), 'the two layers trained apart');
    assert.notDeepEqual(value('bn2.running_var'), value('bn2.weight'), 'the running variance is a statistic, not γ');
  });
});
