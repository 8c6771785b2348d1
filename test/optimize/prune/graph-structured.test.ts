/**
 * Structured pruning of imported graphs (kiln.prune on a GraphModel, src/optimize/prune/graph-structured.ts):
 * a pruned graph computes what the original computes when the removed units were already zero; the
 * smaller file keeps the input/output names and opset and really is smaller; bad input gets a clear
 * error or a reported skip, and nothing is changed on failure.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { tensorFromProto } from '../../../src/graph/onnx-io.js';
import { decodeModel } from '../../../src/graph/proto.js';
import { prune } from '../../../src/optimize/prune/prune.js';
import { groupScores } from '../../../src/optimize/prune/graph-structured.js';
import { taylorGradients } from '../../../src/optimize/prune/taylor.js';
import type { ChannelGroup, GroupKind } from '../../../src/optimize/prune/graph-groups.js';
import { Tensor } from '../../../src/tensor.js';
import { GraphModel } from '../../../src/train/graph-model.js';
import { kilnError } from './helpers.js';
import { paddedTokenTask } from '../../fixtures/exported/token-task.js';
import { FIXTURES, analyzeFixture, analyzeProto, convBehindLrnModel, fixtureProto, groupOf, i64, images, maxAbsDiff, model, node, recurrentModel, weight, zeroUnits } from './graph-helpers.js';

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const odd = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 1);
const even = (n: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % 2 === 0);

/**
 * Zeroes the odd units of every group the options prune (exactly the half a 0.5 ratio removes), prunes
 * the zeroed model, and returns the largest difference between their outputs.
 */
async function zeroThenPrune(fixture: string, structured: Record<string, number>, kinds: GroupKind[]) {
  const a = await analyzeFixture(fixture);
  const chosen = a.groups.filter((g) => kinds.includes(g.kind) && g.blockers.length === 0);
  const zero = new Map<ChannelGroup, number[]>(chosen.map((g) => [g, odd(g.units)]));
  const original = await GraphModel.load(`${FIXTURES}/${fixture}.onnx`);
  const zeroed = await GraphModel.load(`${FIXTURES}/${fixture}.onnx`);
  zeroed.setWeights(zeroUnits(a, zeroed.weights, zero));
  const { model: small, report } = await prune(zeroed, { structured });
  // The text fixture takes token ids and an attention mask (padding included, so the mask matters).
  // vol3d reads clips [1, 4, 28, 28] (volumes).
  const x = fixture === 'textmask' ? paddedTokenTask(16, 5, false).x : images(16, fixture === 'vol3d' ? [1, 4, 28, 28] : [1, 28, 28]);
  const [p, z, o] = await Promise.all([small.predict(x), zeroed.predict(x), original.predict(x)]);
  return { a, chosen, report, small, diff: maxAbsDiff(p.data as Float32Array, z.data as Float32Array), zeroingMattered: maxAbsDiff(z.data as Float32Array, o.data as Float32Array) };
}

describe('structured pruning of imported graphs: a pruned graph equals the original with the removed units zeroed', () => {
  for (const [fixture, structured, kinds] of [
    ['resnet', { ratio: 0.5 }, ['channels']],
    ['resnet_fused', { ratio: 0.5 }, ['channels']],
    ['dwsep', { ratio: 0.5 }, ['channels']],
    ['mlp', { ratio: 0.5 }, ['units']],
    // LSTM (bidirectional), GRU and RNN: hidden sizes rewritten, torch's zero initial states dropped.
    ['rnn', { ratio: 0.5 }, ['units']],
    // 3-D: Conv3d (dense, strided, depthwise), BatchNorm3d, ConvTranspose3d.
    ['vol3d', { ratio: 0.5 }, ['channels']],
    ['vit13', { heads: 0.5, mlp: 0.5 }, ['heads', 'units']],
    ['vit17', { heads: 0.5, mlp: 0.5, headDims: 0.5 }, ['heads', 'units', 'headDims']],
    // Its attention mask is expanded to the heads: that Expand's target is rewritten too.
    ['textmask', { heads: 0.5, mlp: 0.5 }, ['heads', 'units']],
    // In rounds (no fine-tuning between them here): the zeroed units go first, re-scored each round.
    ['resnet', { ratio: 0.5, iterations: 2 }, ['channels']],
    ['vit17', { heads: 0.5, mlp: 0.5, iterations: 2 }, ['heads', 'units']],
  ] as const) {
    it(`${fixture} ${JSON.stringify(structured)}`, async () => {
      const { chosen, report, small, diff, zeroingMattered } = await zeroThenPrune(fixture, structured, [...kinds]);
      assert.ok(chosen.length > 0);
      // The criterion finds the zeroed units (score 0) and removes exactly them.
      for (const g of chosen) {
        const r = report.groups.find((x) => x.producers.join() === g.producers.join() && x.kind === g.kind && x.weights.join() === g.members.map((m) => `${m.tensor}[${m.axis}]`).join())!;
        assert.ok(r.pruned, `${g.producers} pruned`);
        assert.deepEqual(r.keptUnits, even(g.units), `${g.kind} of ${g.producers}`);
        assert.deepEqual(r.units, [g.units, g.units / 2]);
      }
      assert.ok(diff < 1e-5, `pruned vs zeroed: ${diff}`);
      assert.ok(zeroingMattered > 1e-3, `zeroing changed the outputs (${zeroingMattered}), so the comparison is not trivial`);
      assert.ok(report.after.parameters < report.before.parameters);
      assert.ok(report.after.flops < report.before.flops);
      // The file is smaller, with the original's input, output, opset and (remaining) node names.
      const original = fixtureProto(fixture);
      const saved = decodeModel(small.toOnnx());
      assert.deepEqual(saved.graph!.input!.map((i) => [i.name, i.type]), original.graph!.input!.map((i) => [i.name, i.type]));
      assert.deepEqual(saved.graph!.output!.map((o) => [o.name, o.type]), original.graph!.output!.map((o) => [o.name, o.type]));
      assert.deepEqual(saved.opsetImport, original.opsetImport);
      const names = new Set(original.graph!.node!.map((n) => n.name));
      assert.ok(saved.graph!.node!.every((n) => names.has(n.name)));
    });
  }

  it("a two-layer LSTM as torch exports it: one zero ConstantOfShape sliced into each layer's initial state, the layers' final states concatenated", async () => {
    const layers = [0, 1].flatMap((l) => [
      node('Slice', ['zeros', `from${l}`, `to${l}`, 'axis0'], [`h0_${l}`]),
      node('Slice', ['zeros', `from${l}`, `to${l}`, 'axis0'], [`c0_${l}`], {}, `c0_${l}`),
      { ...node('LSTM', [l === 0 ? 'steps' : 'y0', `w${l}`, `r${l}`, `b${l}`, '', `h0_${l}`, `c0_${l}`], [`y${l}full`, `yh${l}`, `yc${l}`], { hidden_size: 6 }), name: `lstm${l}` },
      node('Squeeze', [`y${l}full`, 'axis1'], [`y${l}`]),
    ]);
    const proto = model([5, 4], 'logits', 3, [
      node('Transpose', ['input'], ['steps'], { perm: [1, 0, 2] }),
      node('Shape', ['steps'], ['shape']),
      node('Gather', ['shape', 'one'], ['n']),
      node('Concat', ['two', 'n', 'six'], ['stateShape'], { axis: 0 }),
      node('ConstantOfShape', ['stateShape'], ['zeros']),
      ...layers,
      node('Concat', ['yh0', 'yh1'], ['finals'], { axis: 0 }),
      node('Gather', ['finals', 'last'], ['top'], { axis: 0 }),
      node('Gemm', ['top', 'fc'], ['logits'], { transB: 1 }),
    ], {
      ...Object.fromEntries([0, 1].flatMap((l) => [[`w${l}`, weight([1, 24, l === 0 ? 4 : 6], 10 + l)], [`r${l}`, weight([1, 24, 6], 20 + l)], [`b${l}`, weight([1, 48], 30 + l)], [`from${l}`, i64(l)], [`to${l}`, i64(l + 1)]])),
      one: i64(1), two: i64(2), six: i64(6), axis0: i64(0), axis1: i64(1), last: new Tensor(BigInt64Array.of(1n), [], 'int64'), fc: weight([3, 6], 40),
    });
    const a = await analyzeProto(proto);
    // The concatenated final states tie the two layers' hidden units into one group.
    const g = groupOf(a, 'lstm0', 'lstm1');
    assert.deepEqual(g.blockers, []);
    const original = await GraphModel.fromProto(proto, 'lstm2.onnx');
    const zeroed = await GraphModel.fromProto(proto, 'lstm2.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map([[g, odd(6)]])));
    const { model: small, report } = await prune(zeroed, { structured: { ratio: 0.5 } });
    assert.deepEqual(report.groups.find((r) => r.pruned)!.keptUnits, even(6));
    const x = new Tensor(Float32Array.from({ length: 8 * 20 }, (_, i) => Math.sin(i)), [8, 5, 4], 'float32');
    const [p, z, o] = await Promise.all([small.predict(x), zeroed.predict(x), original.predict(x)]);
    assert.ok(maxAbsDiff(p.data as Float32Array, z.data as Float32Array) < 1e-5);
    assert.ok(maxAbsDiff(z.data as Float32Array, o.data as Float32Array) > 1e-3);
    const saved = decodeModel(small.toOnnx());
    for (const l of [0, 1]) {
      const lstm = saved.graph!.node!.find((n) => n.name === `lstm${l}`)!;
      assert.equal(lstm.attribute!.find((at) => at.name === 'hidden_size')!.i, 3);
      assert.deepEqual(lstm.input, [l === 0 ? 'steps' : 'y0', `w${l}`, `r${l}`, `b${l}`], 'the zero initial states are dropped');
    }
    assert.ok(!saved.graph!.node!.some((n) => n.opType === 'ConstantOfShape'), 'with nothing left reading them');
  });

  it("a learned initial state expanded to the batch at run time (torch's h0.expand(1, n, H)) prunes with the layer: the target's entry becomes 1", async () => {
    const proto = model([5, 4], 'logits', 3, [
      node('Transpose', ['input'], ['steps'], { perm: [1, 0, 2] }),
      node('Shape', ['steps'], ['shape']),
      node('Gather', ['shape', 'one'], ['n']),
      node('Concat', ['first', 'n', 'six'], ['target'], { axis: 0 }),
      node('Expand', ['h0', 'target'], ['h0n'], {}, 'expand'),
      { ...node('LSTM', ['steps', 'w', 'r', 'b', '', 'h0n'], ['y', 'yh'], { hidden_size: 6 }), name: 'lstm' },
      node('Transpose', ['yh'], ['last'], { perm: [1, 0, 2] }),
      node('Flatten', ['last'], ['f']),
      { ...node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }), name: 'fc' },
    ], { w: weight([1, 24, 4], 1), r: weight([1, 24, 6], 2), b: weight([1, 48], 3), h0: weight([1, 1, 6], 4), fc: weight([3, 6], 5), one: i64(1), first: i64(1), six: i64(6) });
    const a = await analyzeProto(proto);
    const g = groupOf(a, 'lstm');
    assert.deepEqual(g.blockers, []);
    assert.ok(g.members.some((m) => m.tensor === 'h0' && m.axis === 2));
    const zeroed = await GraphModel.fromProto(proto, 'h0.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map([[g, odd(6)]])));
    const { model: small } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const x = new Tensor(Float32Array.from({ length: 8 * 20 }, (_, i) => Math.sin(i * 0.7)), [8, 5, 4], 'float32');
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
    assert.deepEqual(small.weights.get('h0')!.shape, [1, 1, 3]);
  });

  it("an Expand of a size-1 axis to a size computed at run time leaves that axis's group whole, saying why", async () => {
    // A per-example gate [N, 1, 1, 1] broadcast to the feature map's shape, read at run time (expand_as):
    // the channel axis comes from the target alone.
    const a = await analyzeProto(
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('ReduceMean', ['c1'], ['gate'], { axes: [1, 2, 3], keepdims: 1 }),
        node('Shape', ['c1'], ['shape']),
        node('Expand', ['gate', 'shape'], ['gates'], {}, 'expand'),
        node('Mul', ['c1', 'gates'], ['m']),
        node('GlobalAveragePool', ['m'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), fc: weight([3, 4], 2) }),
    );
    assert.ok(groupOf(a, 'c1').blockers.some((b) => b.node === 'expand' && b.why === 'expands to a size computed at run time along this axis'), JSON.stringify(groupOf(a, 'c1').blockers));
  });

  it("a recurrent layer whose Y is not written (''): its FLOPs are counted, and it prunes", async () => {
    const proto = recurrentModel(['', 'yh']);
    const zeroed = await GraphModel.fromProto(proto, 'rnn-state.onnx');
    const a = await analyzeProto(proto);
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map([[groupOf(a, 'rnn'), odd(6)]])));
    const { model: small, report } = await prune(zeroed, { structured: { ratio: 0.5 } });
    // Per example: 5 steps of W [6, 4] and R [6, 6], then the head [3, 6]; after, hidden 3.
    assert.equal(report.before.flops, 2 * 5 * 6 * (4 + 6) + 2 * 3 * 6);
    assert.equal(report.after.flops, 2 * 5 * 3 * (4 + 3) + 2 * 3 * 3);
    const x = new Tensor(Float32Array.from({ length: 8 * 20 }, (_, i) => Math.cos(i)), [8, 5, 4], 'float32');
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
  });

  it('vit13 with half the heads: the Reshape into heads and the slices of the packed projection are rewritten', async () => {
    const original = await GraphModel.load(`${FIXTURES}/vit13.onnx`);
    const { model: small } = await prune(original, { structured: { heads: 0.5 } });
    const saved = decodeModel(small.toOnnx());
    const init = new Map(saved.graph!.initializer!.map((t) => [t.name, t]));
    const byName = new Map(saved.graph!.node!.map((n) => [n.name, n]));
    const ints = (name: string) => Array.from(tensorFromProto(init.get(name)!).data as BigInt64Array, Number);
    assert.deepEqual(init.get('onnx::MatMul_347')!.dims, [32, 48]);
    assert.deepEqual(init.get('encoder.layers.0.self_attn.in_proj_bias')!.dims, [48]);
    assert.deepEqual(init.get('encoder.layers.0.self_attn.out_proj.weight')!.dims, [32, 16]);
    // q, k, v: 16 columns each now.
    const slices = ['Slice', 'Slice_1', 'Slice_2'].map((s) => byName.get(`/encoder/layers.0/self_attn/${s}`)!);
    assert.deepEqual(slices.map((s) => [ints(s.input![1]!), ints(s.input![2]!)]), [[[0], [16]], [[16], [32]], [[32], [48]]]);
    // [17, N·heads, 8] with 2 heads; the attention output [17·N, 2·8].
    assert.deepEqual(ints(byName.get('/encoder/layers.0/self_attn/Reshape')!.input![1]!), [17, -1, 8]);
    assert.deepEqual(ints(byName.get('/encoder/layers.0/self_attn/Reshape_3')!.input![1]!), [-1, 16]);
    // The shape arithmetic those targets replaced is gone.
    assert.ok(saved.graph!.node!.length < fixtureProto('vit13').graph!.node!.length);
  });
});

describe('structured pruning of imported graphs: fine-tuning and the report', () => {
  it('fine-tunes the smaller graph and reports every group, pruned or left whole with the reason', async () => {
    const source = `${FIXTURES}/resnet.onnx`;
    const before = sha(source);
    const original = await GraphModel.load(source);
    const weightsBefore = new Map([...original.weights].map(([k, t]) => [k, (t.data as Float32Array).slice()]));
    const x = images(64, [1, 28, 28], 9);
    const y = new Tensor(Int32Array.from({ length: 64 }, (_, i) => i % 10), [64], 'int32');
    const { model: small, report } = await prune(original, { structured: { ratio: 0.5 }, fineTune: { x, y, epochs: 1, batchSize: 16, verbose: 0 }, evaluation: { x, y } });
    assert.equal(report.history?.length, 1);
    assert.equal(report.history![0]!.loss!.length, 1);
    assert.deepEqual(report.groups.map((g) => [g.kind, g.units, g.pruned]), [
      ['channels', [8, 4], true],
      ['channels', [8, 4], true],
      ['channels', [16, 8], true],
      ['channels', [16, 8], true],
      ['units', [10, 10], false],
    ]);
    assert.match(report.groups[4]!.leftWhole[0]!.why, /model's output 'logits'/);
    assert.equal(report.before.parameters, 5122, 'PyTorch counts 5,122 (running statistics are not parameters)');
    assert.ok(report.after.parameters / report.before.parameters <= 0.55, `${report.after.parameters} / ${report.before.parameters}`);
    assert.equal(typeof report.after.accuracy, 'number');
    // The original file and the model passed in are unchanged.
    assert.equal(sha(source), before);
    for (const [k, t] of original.weights) assert.deepEqual(t.data, weightsBefore.get(k), k);
    assert.deepEqual(small.modelInput, original.modelInput);
  });
});

/** 6 → 16 → 16 → 16 → 3, Gemm and Relu: keeping k units in each hidden layer leaves 2k² + 12k + 3 parameters. */
function mlpGraph() {
  const gemm = (x: string, w: string, b: string, out: string) => node('Gemm', [x, w, b], [out], { transB: 1 });
  return model([6], 'logits', 3, [
    gemm('input', 'w1', 'b1', 'h1'), node('Relu', ['h1'], ['r1']),
    gemm('r1', 'w2', 'b2', 'h2'), node('Relu', ['h2'], ['r2']),
    gemm('r2', 'w3', 'b3', 'h3'), node('Relu', ['h3'], ['r3']),
    gemm('r3', 'w4', 'b4', 'logits'),
  ], { w1: weight([16, 6], 1), b1: weight([16], 2), w2: weight([16, 16], 3), b2: weight([16], 4), w3: weight([16, 16], 5), b3: weight([16], 6), w4: weight([3, 16], 7), b4: weight([3], 8) });
}

describe('structured pruning of imported graphs: a parameter budget (structured.parameters)', () => {
  it('finds the smallest ratio that removes that fraction of the parameters', async () => {
    // Half of 707 is 353.5: k = 10 leaves 323, k = 11 leaves 377; Math.round(16 (1 − r)) is 10 for r in
    // (0.34375, 0.40625], whose middle is reported.
    const mlp = await GraphModel.fromProto(mlpGraph());
    const { report } = await prune(mlp, { structured: { parameters: 0.5 } });
    assert.equal(report.before.parameters, 707);
    assert.equal(report.after.parameters, 323);
    assert.deepEqual(report.groups.map((g) => g.units), [[16, 10], [16, 10], [16, 10], [3, 3]]);
    assert.ok(Math.abs(report.ratio! - 0.375) < 1e-9, String(report.ratio));
    // Explicit kinds keep their ratio: only the (open) channel groups would follow the search, and an MLP has none.
    await assert.rejects(prune(mlp, { structured: { parameters: 0.5, mlp: 0.25 } }), kilnError('INVALID_ARGUMENT', 'structured.parameters: no group of channels or attention heads can be pruned'));
  });

  it('the ResNet fixture: 5, 5, 11, 11 channels (45.88%), where 6, 6, 11, 11 would keep 52.19%; the printed ratio prunes the same', async () => {
    const resnet = await GraphModel.load(`${FIXTURES}/resnet.onnx`);
    const { report } = await prune(resnet, { structured: { parameters: 0.5 } });
    assert.deepEqual(report.groups.map((g) => g.units[1]), [5, 5, 11, 11, 10]);
    assert.equal(report.after.parameters, 2350);
    const gentler = await prune(resnet, { structured: { ratio: 0.3 } });
    assert.deepEqual(gentler.report.groups.map((g) => g.units[1]), [6, 6, 11, 11, 10]);
    assert.equal(gentler.report.after.parameters, 2673, 'over 2,561, half of 5,122');
    const again = await prune(resnet, { structured: { ratio: Number(report.ratio!.toFixed(4)) } });
    assert.deepEqual(again.report.groups.map((g) => g.units), report.groups.map((g) => g.units));
  });

  it('a searched group keeps one unit while the others go on shrinking', async () => {
    // 6 → 2 → 32 → 3: k1 and k2 hidden units leave 7·k1 + (k1 + 1)·k2 + 3·k2 + 3 of 209 parameters. A
    // fifth of 209 is 41.8: k1 stops at 1 (round(2 (1 − r)) ≥ 1), and k2 = 6 leaves 40 (k2 = 7: 45).
    // Math.round(32 (1 − r)) is 6 for r in (0.796875, 0.828125]: 0.8125 is reported.
    const gemm = (x: string, w: string, b: string, out: string) => node('Gemm', [x, w, b], [out], { transB: 1 });
    const narrow = await GraphModel.fromProto(model([6], 'logits', 3, [
      gemm('input', 'w1', 'b1', 'h1'), node('Relu', ['h1'], ['r1']),
      gemm('r1', 'w2', 'b2', 'h2'), node('Relu', ['h2'], ['r2']),
      gemm('r2', 'w3', 'b3', 'logits'),
    ], { w1: weight([2, 6], 1), b1: weight([2], 2), w2: weight([32, 2], 3), b2: weight([32], 4), w3: weight([3, 32], 5), b3: weight([3], 6) }));
    const { report } = await prune(narrow, { structured: { parameters: 0.8 } });
    assert.deepEqual(report.groups.map((g) => g.units), [[2, 1], [32, 6], [3, 3]]);
    assert.equal(report.after.parameters, 40);
    assert.ok(Math.abs(report.ratio! - 0.8125) < 1e-9, String(report.ratio));
  });

  it('bad input: both ratio and parameters, a fraction out of (0, 1), a budget the groups cannot reach', async () => {
    const mlp = await GraphModel.fromProto(mlpGraph());
    await assert.rejects(prune(mlp, { structured: { ratio: 0.5, parameters: 0.5 } }), kilnError('INVALID_ARGUMENT', 'ratio (0.5) or parameters (0.5), not both'));
    await assert.rejects(prune(mlp, { structured: { parameters: 0 } }), kilnError('INVALID_ARGUMENT', 'structured.parameters must be a number in (0, 1)', 'got 0'));
    // Only h1's group pruned: one unit there leaves 7 + 32 + 272 + 51 of 707.
    await assert.rejects(prune(mlp, { structured: { parameters: 0.6, groups: ['h1'] } }), kilnError('INVALID_ARGUMENT', 'removes only 48.8% of the 707 parameters'));
  });
});

describe('structured pruning of imported graphs: iterations', () => {
  it('prunes in rounds, each fine-tuned, the units kept given as indices of the original', async () => {
    const x = images(32, [1, 28, 28]);
    const y = new Tensor(Int32Array.from({ length: 32 }, (_, i) => i % 10), [32], 'int32');
    const resnet = await GraphModel.load(`${FIXTURES}/resnet.onnx`);
    const { model: small, report } = await prune(resnet, { structured: { ratio: 0.5, iterations: 3 }, fineTune: { x, y, epochs: 1, batchSize: 16, verbose: 0 } });
    assert.equal(report.history?.length, 3, 'one fine-tuning per round');
    const pruned = report.groups.filter((g) => g.pruned);
    assert.ok(pruned.length > 0);
    for (const g of pruned) {
      assert.equal(g.units[1], Math.round(g.units[0] * 0.5), `${g.producers}: ${g.units}`);
      assert.equal(g.keptUnits!.length, g.units[1]);
      assert.ok(g.keptUnits!.every((u, i) => u >= 0 && u < g.units[0] && (i === 0 || u > g.keptUnits![i - 1]!)), `sorted original indices: ${g.keptUnits}`);
    }
    assert.equal(report.after.parameters, (await prune(resnet, { structured: { ratio: 0.5 } })).report.after.parameters, 'the same architecture as one round');
    assert.deepEqual(small.weights.get('stem.0.0.weight')!.shape, [4, 1, 3, 3]);
  });
});

describe("structured pruning of imported graphs: criterion 'taylor'", () => {
  // input [4] → Gemm (4 hidden units) → Relu → Gemm → logits [3]. Hidden unit 0 has the largest
  // weights but a bias of -100: its ReLU is never active, so the loss does not depend on it. The
  // others are always active (bias 1 against inputs in [0, 1)): no kink for the finite differences.
  const deadUnitModel = () =>
    model([4], 'logits', 3, [node('Gemm', ['input', 'w1', 'b1'], ['h'], { transB: 1 }), node('Relu', ['h'], ['r']), node('Gemm', ['r', 'w2', 'b2'], ['logits'], { transB: 1 })], {
      w1: new Tensor(Float32Array.from([5, 5, 5, 5, 0.3, -0.2, 0.1, 0.4, -0.3, 0.2, 0.5, -0.1, 0.2, 0.3, -0.4, 0.1]), [4, 4], 'float32'),
      b1: new Tensor(Float32Array.from([-100, 1, 1, 1]), [4], 'float32'),
      w2: new Tensor(Float32Array.from([4, 0.5, -0.3, 0.2, -4, 0.1, 0.4, -0.2, 4, -0.3, 0.2, 0.5]), [3, 4], 'float32'),
      b2: weight([3], 3),
    });
  const data = () => {
    const x = images(64, [4], 7);
    return { x, y: new Tensor(Int32Array.from({ length: 64 }, (_, i) => i % 3), [64], 'int32') };
  };

  it('removes the unit the loss does not depend on, which the L1 norm keeps', async () => {
    const l1 = await prune(await GraphModel.fromProto(deadUnitModel()), { structured: { ratio: 0.5 } });
    const taylor = await prune(await GraphModel.fromProto(deadUnitModel()), { structured: { ratio: 0.5, criterion: 'taylor', data: { ...data(), batchSize: 16 } } });
    const kept = (r: typeof l1) => r.report.groups.find((g) => g.pruned)!.keptUnits!;
    assert.ok(kept(l1).includes(0), `l1 keeps the dead unit: ${kept(l1)}`);
    assert.ok(!kept(taylor).includes(0), `taylor removes it: ${kept(taylor)}`);
    // The dead unit contributed nothing, so removing it (and one live unit) changes the logits less than L1's choice.
    const { x } = data();
    const [full, a, b] = await Promise.all([GraphModel.fromProto(deadUnitModel()).then((m) => m.predict(x)), l1.model.predict(x), taylor.model.predict(x)]);
    assert.ok(maxAbsDiff(b.data as Float32Array, full.data as Float32Array) < maxAbsDiff(a.data as Float32Array, full.data as Float32Array));
  });

  it('reads channels-last data for a channels-first model, leaving the model passed in as it was', async () => {
    const resnet = await GraphModel.load(`${FIXTURES}/resnet.onnx`);
    const x = images(16, [28, 28, 1]);
    const y = new Tensor(Int32Array.from({ length: 16 }, (_, i) => i % 10), [16], 'int32');
    const grads = await taylorGradients(resnet, { x, y, batchSize: 8 });
    assert.ok([...grads.values()].some((g) => g.some((v) => v !== 0)));
    assert.deepEqual(resnet.preprocessing, {}, 'no layout settled on the caller');
  });

  it("leaves out a tensor whose gradient is round-off (a bias before a training-mode BatchNormalization)", async () => {
    const proto = model([4], 'logits', 3, [
      node('Gemm', ['input', 'w1', 'b1'], ['h'], { transB: 1 }),
      node('BatchNormalization', ['h', 'scale', 'shift', 'mean', 'var'], ['n']),
      node('Relu', ['n'], ['r']),
      node('Gemm', ['r', 'w2', 'b2'], ['logits'], { transB: 1 }),
    ], { w1: weight([6, 4], 1), b1: weight([6], 2), scale: weight([6], 3), shift: weight([6], 4), mean: weight([6], 5), var: new Tensor(new Float32Array(6).fill(1), [6], 'float32'), w2: weight([3, 6], 6), b2: weight([3], 7) });
    const a = await analyzeProto(proto);
    const group = groupOf(a, 'h');
    const weights = new Map(proto.graph!.initializer!.map((t) => [t.name!, tensorFromProto(t)]));
    const gradient = (name: string, scale: number) => Float32Array.from(weights.get(name)!.data as Float32Array, (_, i) => scale * Math.sin(i + name.length));
    const grads = (b1: number) => new Map(['w1', 'b1', 'scale', 'shift', 'w2'].map((n) => [n, gradient(n, n === 'b1' ? b1 : 1e-2)]));
    // Round-off in b1's gradient (1e-10 against 1e-2) scores as if it were exactly zero.
    assert.deepEqual(groupScores(a, group, weights, 'taylor', grads(1e-10)), groupScores(a, group, weights, 'taylor', grads(0)));
    // A real gradient there counts.
    assert.notDeepEqual(groupScores(a, group, weights, 'taylor', grads(1e-2)), groupScores(a, group, weights, 'taylor', grads(0)));
  });

  it("the gradient it ranks by equals the loss's finite differences", async () => {
    const m = await GraphModel.fromProto(deadUnitModel());
    const { x, y } = data();
    const grads = await taylorGradients(m, { x, y, batches: 1, batchSize: 64 });
    // Mean sparse cross-entropy from the logits, in float64, for a perturbed weight.
    const lossWith = async (name: string, i: number, delta: number) => {
      const probe = await GraphModel.fromProto(deadUnitModel());
      const w = probe.weights.get(name)!;
      const data = Float32Array.from(w.data as Float32Array);
      data[i]! += delta;
      probe.setWeights(new Map([[name, new Tensor(data, [...w.shape], 'float32')]]));
      const logits = (await probe.predict(x)).data as Float32Array;
      let total = 0;
      for (let r = 0; r < 64; r++) {
        const row = Array.from(logits.subarray(3 * r, 3 * r + 3));
        const max = Math.max(...row);
        total += max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0)) - row[(y.data as Int32Array)[r]!]!;
      }
      return total / 64;
    };
    for (const [name, i] of [['w1', 5], ['b1', 2], ['w2', 1], ['w2', 0], ['b2', 1]] as const) {
      const h = 1e-2;
      const numeric = ((await lossWith(name, i, h)) - (await lossWith(name, i, -h))) / (2 * h);
      const analytic = grads.get(name)![i]!;
      assert.ok(Math.abs(numeric - analytic) <= 1e-3 + 1e-2 * Math.abs(numeric), `${name}[${i}]: ${analytic} vs finite differences ${numeric}`);
    }
    // The dead unit's weights get no gradient.
    assert.deepEqual(Array.from(grads.get('w1')!.subarray(0, 4)), [0, 0, 0, 0]);
    // A budget smaller than the data takes examples spread over it (every other one here), not the first ones.
    const even = Array.from({ length: 32 }, (_, k) => 2 * k);
    const spread = await taylorGradients(m, { x, y, batches: 1, batchSize: 32 });
    const evens = await taylorGradients(m, { x: x.gather(even), y: y.gather(even), batches: 1, batchSize: 32 });
    assert.deepEqual(Array.from(spread.get('w2')!), Array.from(evens.get('w2')!));
  });
});

describe('structured pruning of imported graphs: bad input', () => {
  it('a ratio that would empty a group, or out of [0, 1), is an error naming the group', async () => {
    const vit = await GraphModel.load(`${FIXTURES}/vit13.onnx`);
    await assert.rejects(prune(vit, { structured: { heads: 0.9 } }), kilnError('INVALID_ARGUMENT', 'would leave none', 'the 4 attention heads of /encoder/layers.0/self_attn/MatMul'));
    await assert.rejects(prune(vit, { structured: { ratio: 1 } }), kilnError('INVALID_ARGUMENT', 'structured.ratio must be a number in [0, 1)'));
    await assert.rejects(prune(vit, { structured: { mlp: -0.1 } }), kilnError('INVALID_ARGUMENT', 'structured.mlp'));
  });

  it('pruning the output layer, a selection matching nothing, options of layer models: clear errors', async () => {
    const resnet = await GraphModel.load(`${FIXTURES}/resnet.onnx`);
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, groups: ['/head/Gemm'] } }), kilnError('INVALID_ARGUMENT', 'cannot remove units of the 10 hidden units of /head/Gemm', "the model's output 'logits'"));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, groups: ['/nothing/*'] } }), kilnError('INVALID_ARGUMENT', "'/nothing/*' matches no group", '/stem/stem.0/stem.0.0/Conv'));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, perLayer: { a: 0.5 } } as never }), kilnError('INVALID_ARGUMENT', 'takes ratio, parameters, heads, mlp, headDims, criterion, data, iterations, groups; got perLayer'));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'l3' as never } }), kilnError('INVALID_ARGUMENT', "'l1', 'l2', 'bnScale' or 'taylor'"));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'taylor' } }), kilnError('INVALID_ARGUMENT', "criterion 'taylor'", 'structured.data'));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, iterations: 0 } }), kilnError('INVALID_ARGUMENT', 'structured.iterations must be a positive integer, got 0'));
    const x = images(8, [1, 28, 28]);
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'taylor', data: { x, y: new Tensor(new Int32Array(5), [5], 'int32') } } }), kilnError('INVALID_DATA', 'x has 8 examples but y has 5'));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'taylor', data: { x, y: new Tensor(new Int32Array(8), [8], 'int32'), batches: 0 } } }), kilnError('INVALID_ARGUMENT', "criterion 'taylor': expected structured.data.batches to be a positive integer, found 0"));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'taylor', data: { x, y: new Tensor(Int32Array.from([0, 1, 2, 3, 4, 5, 6, 10]), [8], 'int32') } } }), kilnError('INVALID_DATA', '10'));
    await assert.rejects(prune(resnet, { structured: { ratio: 0.5, criterion: 'taylor', data: { x: x.slice(0, 0), y: new Tensor(new Int32Array(0), [0], 'int32') } } }), kilnError('INVALID_ARGUMENT', 'no examples'));
    const mlp = await GraphModel.load(`${FIXTURES}/mlp.onnx`);
    await assert.rejects(prune(mlp, { structured: { ratio: 0.5, criterion: 'bnScale' } }), kilnError('INVALID_ARGUMENT', "'bnScale'", 'has none'));
    // A model whose only group is its output layer.
    const linear = await GraphModel.fromProto(model([4], 'logits', 3, [node('Gemm', ['input', 'w', 'b'], ['logits'], { transB: 1 })], { w: weight([3, 4], 1), b: weight([3], 2) }));
    await assert.rejects(prune(linear, { structured: { ratio: 0.5 } }), kilnError('INVALID_ARGUMENT', 'no group can be pruned', "the model's output 'logits'"));
  });

  it('a group behind an op the analysis does not follow is left whole and reported; the rest are pruned', async () => {
    const graph = await GraphModel.fromProto(convBehindLrnModel());
    const { report } = await prune(graph, { structured: { ratio: 0.5 } });
    const [c1, c2] = report.groups;
    assert.deepEqual([c1!.producers, c1!.pruned, c1!.leftWhole], [['c1'], false, [{ node: 'local_response_norm', op: 'LRN', why: 'LRN is not an op the analysis follows' }]]);
    assert.deepEqual([c2!.producers, c2!.units, c2!.pruned], [['c2'], [6, 3], true]);
  });

  it("a size the model computes with as a number (torch's y * y.size(1) ** -0.5) leaves that axis's group whole; a size read only as a shape does not", async () => {
    const scaled = (pick: 'Gather' | 'Slice') =>
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c1'], ['r']),
        node('Shape', ['r'], ['s'], {}, 'shape_of_r'),
        pick === 'Gather' ? node('Gather', ['s', 'channel_axis'], ['c']) : node('Slice', ['s', 'from', 'to'], ['c']),
        node('Cast', ['c'], ['cf'], { to: 1 }, 'to_float'),
        node('Pow', ['cf', 'minus_half'], ['scale']),
        node('Mul', ['r', 'scale'], ['m']),
        node('GlobalAveragePool', ['m'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), fc: weight([3, 4], 2), channel_axis: new Tensor(BigInt64Array.of(1n), [], 'int64'), from: i64(1), to: i64(2), minus_half: new Tensor(Float32Array.of(-0.5), [], 'float32') });
    for (const pick of ['Gather', 'Slice'] as const) {
      const a = await analyzeProto(scaled(pick));
      assert.deepEqual(groupOf(a, 'c1').blockers, [{ node: 'to_float', op: 'Cast', why: "computes with the size of 'r' as a number (read by Shape 'shape_of_r'): removing units would change it" }], pick);
      await assert.rejects(prune(await GraphModel.fromProto(scaled(pick), 'scaled.onnx'), { structured: { ratio: 0.5 } }), kilnError('INVALID_ARGUMENT', 'no group can be pruned', 'as a number'));
    }
    // The height read instead (entry 2): the channels stay prunable.
    const height = scaled('Slice');
    height.graph!.initializer = height.graph!.initializer!.map((t) => (t.name === 'from' ? { ...t, int64Data: undefined, rawData: new Uint8Array(BigInt64Array.of(2n).buffer) } : t.name === 'to' ? { ...t, int64Data: undefined, rawData: new Uint8Array(BigInt64Array.of(3n).buffer) } : t));
    assert.deepEqual(groupOf(await analyzeProto(height), 'c1').blockers, []);
  });

  it('a grouped Conv keeps its group count: a ratio removes that fraction of the channels within each group', async () => {
    // c1 (8 channels) → grouped c2 (groups 2: 4 channels in, 8 out per group... [8, 4, 3, 3]) → pool → Gemm.
    const proto = model([1, 6, 6], 'logits', 3, [
      node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c1'], ['r1']),
      node('Conv', ['r1', 'w2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 2 }),
      node('Relu', ['c2'], ['r2']),
      node('GlobalAveragePool', ['r2'], ['p']),
      node('Flatten', ['p'], ['f']),
      node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
    ], { w1: weight([8, 1, 3, 3], 1), w2: weight([8, 4, 3, 3], 2), fc: weight([3, 8], 3) });
    const a = await analyzeProto(proto);
    const open = a.groups.filter((g) => g.blockers.length === 0);
    assert.deepEqual(open.map((g) => [g.producers, g.units]), [[['c1'], 4], [['c2'], 4]], 'the channels within a group, not the groups');
    const zeroed = await GraphModel.fromProto(proto, 'grouped.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map(open.map((g) => [g, odd(g.units)]))));
    const { model: small } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const saved = decodeModel(small.toOnnx());
    const c2 = saved.graph!.node!.find((n) => n.name === 'c2')!;
    assert.equal(c2.attribute!.find((at) => at.name === 'group')!.i, 2);
    assert.deepEqual(small.weights.get('w2')!.shape, [4, 2, 3, 3], 'half the channels: 8 → 4 out, 4 → 2 in per group');
    const x = images(4, [1, 6, 6]);
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
  });

  it('a grouped ConvTranspose (w [in, out/groups, k…]) keeps its group count the same way, and its own output channels prune', async () => {
    // c1 (8 channels) → grouped up (groups 2: 4 in and 3 out per group, w [8, 3, 2, 2]) → c3 → pool → Gemm.
    const proto = model([1, 4, 4], 'logits', 3, [
      node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c1'], ['r1']),
      node('ConvTranspose', ['r1', 'wt', 'bt'], ['up'], { kernel_shape: [2, 2], strides: [2, 2], group: 2 }),
      node('Relu', ['up'], ['r2']),
      node('Conv', ['r2', 'w3'], ['c3'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }),
      node('Relu', ['c3'], ['r3']),
      node('GlobalAveragePool', ['r3'], ['p']),
      node('Flatten', ['p'], ['f']),
      node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
    ], { w1: weight([8, 1, 3, 3], 1), wt: weight([8, 3, 2, 2], 2), bt: weight([6], 3), w3: weight([4, 6, 3, 3], 4), fc: weight([3, 4], 5) });
    const a = await analyzeProto(proto);
    const open = a.groups.filter((g) => g.blockers.length === 0);
    assert.deepEqual(open.map((g) => [g.producers, g.units]), [[['c1'], 4], [['up'], 3], [['c3'], 4]], 'the channels within a group, not the groups');
    const zeroed = await GraphModel.fromProto(proto, 'grouped-transpose.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map(open.map((g) => [g, odd(g.units)]))));
    const { model: small } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const saved = decodeModel(small.toOnnx());
    assert.equal(saved.graph!.node!.find((n) => n.name === 'up')!.attribute!.find((at) => at.name === 'group')!.i, 2);
    assert.deepEqual(small.weights.get('wt')!.shape, [4, 2, 2, 2], '8 → 4 in (2 per group), 3 → 2 out per group');
    assert.deepEqual(small.weights.get('bt')!.shape, [4]);
    const x = images(4, [1, 4, 4]);
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
  });

  it('a depthwise ConvTranspose (groups = channels, w [C, 1, k…]) loses channels with its input, its group count rewritten', async () => {
    const proto = model([1, 4, 4], 'logits', 3, [
      node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
      node('Relu', ['c1'], ['r1']),
      node('ConvTranspose', ['r1', 'wt'], ['up'], { kernel_shape: [2, 2], strides: [2, 2], group: 8 }),
      node('GlobalAveragePool', ['up'], ['p']),
      node('Flatten', ['p'], ['f']),
      node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
    ], { w1: weight([8, 1, 3, 3], 1), wt: weight([8, 1, 2, 2], 2), fc: weight([3, 8], 3) });
    const a = await analyzeProto(proto);
    const open = a.groups.filter((g) => g.blockers.length === 0);
    assert.deepEqual(open.map((g) => [g.producers, g.units]), [[['c1'], 8]]);
    const zeroed = await GraphModel.fromProto(proto, 'depthwise-transpose.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map(open.map((g) => [g, odd(g.units)]))));
    const { model: small } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const saved = decodeModel(small.toOnnx());
    assert.equal(saved.graph!.node!.find((n) => n.name === 'up')!.attribute!.find((at) => at.name === 'group')!.i, 4);
    assert.deepEqual(small.weights.get('wt')!.shape, [4, 1, 2, 2]);
    const x = images(4, [1, 4, 4]);
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
  });

  it("a Resize to sizes computed at run time (F.interpolate(size=skip.shape[-2:])) prunes through; sizes that would keep the old channel count leave the group whole", async () => {
    const upsampled = (channels: 'follow' | 'written') =>
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c1'], ['r1']),
        node('Shape', ['r1'], ['s']),
        // [N, C] read from the input, or [N] and a channel count written down; then the new H, W.
        ...(channels === 'follow'
          ? [node('Slice', ['s', 'zero', 'two'], ['nc']), node('Concat', ['nc', 'hw'], ['sizes'], { axis: 0 })]
          : [node('Slice', ['s', 'zero', 'one'], ['n']), node('Concat', ['n', 'four', 'hw'], ['sizes'], { axis: 0 })]),
        { ...node('Resize', ['r1', '', '', 'sizes'], ['up'], { mode: 'nearest' }), name: 'resize' },
        node('GlobalAveragePool', ['up'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), fc: weight([3, 4], 2), zero: i64(0), one: i64(1), two: i64(2), four: i64(4), hw: i64(8, 8) });
    const follow = upsampled('follow');
    const a = await analyzeProto(follow);
    assert.deepEqual(groupOf(a, 'c1').blockers, []);
    const zeroed = await GraphModel.fromProto(follow, 'up.onnx');
    zeroed.setWeights(zeroUnits(a, zeroed.weights, new Map([[groupOf(a, 'c1'), odd(4)]])));
    const { model: small } = await prune(zeroed, { structured: { ratio: 0.5 } });
    const x = images(4, [1, 4, 4]);
    assert.ok(maxAbsDiff((await small.predict(x)).data as Float32Array, (await zeroed.predict(x)).data as Float32Array) < 1e-5);
    // The channel count written as 4: the shrunk graph's Resize output is measured against the analysis', and c1 stays whole.
    await assert.rejects(prune(await GraphModel.fromProto(upsampled('written'), 'up4.onnx'), { structured: { ratio: 0.5 } }), kilnError('INVALID_ARGUMENT'));
  });

  it('a size read at run time (Shape) where no rewrite follows it leaves that group whole, and the rest are pruned', async () => {
    // ones = ConstantOfShape(Shape(relu(c1))) is concatenated with c2's features: pruning c1 would
    // change the concatenation's width behind the analysis' back.
    const one = { name: 'value', type: 4, t: { dims: [1], dataType: 1, floatData: [1] } };
    const graph = await GraphModel.fromProto(
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c1'], ['r']),
        node('Shape', ['r'], ['s'], {}, 'shape_of_r'),
        { opType: 'ConstantOfShape', name: 'ones', input: ['s'], output: ['ones'], attribute: [one] },
        node('GlobalAveragePool', ['ones'], ['po']),
        node('Flatten', ['po'], ['fo']),
        node('Conv', ['r', 'w2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('GlobalAveragePool', ['c2'], ['p2']),
        node('Flatten', ['p2'], ['f2']),
        node('Concat', ['f2', 'fo'], ['cat'], { axis: 1 }),
        node('Gemm', ['cat', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), w2: weight([4, 4, 3, 3], 2), fc: weight([3, 8], 3) }),
    );
    const { model: small, report } = await prune(graph, { structured: { ratio: 0.5 } });
    const c1 = report.groups.find((g) => g.producers[0] === 'c1')!;
    const c2 = report.groups.find((g) => g.producers[0] === 'c2')!;
    assert.equal(c1.pruned, false);
    assert.equal(c1.leftWhole[0]!.node, 'shape_of_r');
    assert.match(c1.leftWhole[0]!.why, /reads the size of 'r' at run time/);
    assert.deepEqual([c2.units, c2.pruned], [[4, 2], true]);
    assert.deepEqual([...(await small.predict(images(2, [1, 4, 4]))).shape], [2, 3]);
    // With a parameter budget the ratio is chosen on the analysis' prediction; a group left whole after
    // that keeps its parameters, and the report's counts say the budget was missed.
    const budget = await prune(graph, { structured: { parameters: 0.5 } });
    assert.equal(budget.report.groups.find((g) => g.producers[0] === 'c1')!.pruned, false);
    assert.ok(budget.report.ratio! > 0 && budget.report.after.parameters > 0.5 * budget.report.before.parameters, JSON.stringify([budget.report.ratio, budget.report.after.parameters, budget.report.before.parameters]));
  });
});
