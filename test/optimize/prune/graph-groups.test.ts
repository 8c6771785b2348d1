/**
 * Channel dependency groups of imported graphs (src/optimize/prune/graph-groups.ts), checked against
 * groups derived by hand from each PyTorch fixture's architecture (test/fixtures/exported/README.md):
 * which weights and axes move together, which index of an axis belongs to which unit, and which
 * groups stay whole and why.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tensorToProto } from '../../../src/graph/onnx-io.js';
import { Tensor } from '../../../src/tensor.js';
import { analyzeFixture, analyzeProto, convBehindLrnModel, groupOf, memberSet, model, node, unitsAlong, weight } from './graph-helpers.js';

const bn = (prefix: string, axis = 0) => ['weight', 'bias', 'running_mean', 'running_var'].map((p) => `${prefix}.${p}:${axis}`);
const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));

describe('channel dependency groups of the PyTorch fixtures', () => {
  it('resnet: the stem and block 1 share one group through the identity Add; block 2 conv2 and its projection share another', async () => {
    const a = await analyzeFixture('resnet');
    assert.equal(a.groups.length, 5);
    const residual1 = groupOf(a, '/stem/stem.0/stem.0.0/Conv', '/block1/conv2/conv2.0/Conv');
    assert.equal(residual1.kind, 'channels');
    assert.equal(residual1.units, 8);
    assert.deepEqual(
      memberSet(residual1),
      [
        'stem.0.0.weight:0', ...bn('stem.0.1'),
        'block1.conv2.0.weight:0', ...bn('block1.conv2.1'),
        // Readers of the residual stream: block 1's first conv, block 2's first conv and its projection.
        'block1.conv1.0.weight:1', 'block2.conv1.0.weight:1', 'block2.shortcut.0.weight:1',
      ].sort(),
    );
    assert.deepEqual(residual1.blockers, []);
    const inner1 = groupOf(a, '/block1/conv1/conv1.0/Conv');
    assert.deepEqual(memberSet(inner1), ['block1.conv1.0.weight:0', ...bn('block1.conv1.1'), 'block1.conv2.0.weight:1'].sort());
    const inner2 = groupOf(a, '/block2/conv1/conv1.0/Conv');
    assert.deepEqual(memberSet(inner2), ['block2.conv1.0.weight:0', ...bn('block2.conv1.1'), 'block2.conv2.0.weight:1'].sort());
    const residual2 = groupOf(a, '/block2/conv2/conv2.0/Conv', '/block2/shortcut/shortcut.0/Conv');
    assert.equal(residual2.units, 16);
    // GlobalAveragePool → Flatten → Gemm: one head column per channel.
    assert.deepEqual(memberSet(residual2), ['block2.conv2.0.weight:0', ...bn('block2.conv2.1'), 'block2.shortcut.0.weight:0', ...bn('block2.shortcut.1'), 'head.weight:1'].sort());
    assert.deepEqual(unitsAlong(a, residual2, 'head.weight', 1), range(16, (i) => i));
    // The statistics are sliced with the group but marked (they are not scored).
    assert.deepEqual(residual2.members.filter((m) => m.statistic).map((m) => m.tensor).sort(), ['block2.conv2.1.running_mean', 'block2.conv2.1.running_var', 'block2.shortcut.1.running_mean', 'block2.shortcut.1.running_var']);
    const head = groupOf(a, '/head/Gemm');
    assert.deepEqual(memberSet(head), ['head.bias:0', 'head.weight:0']);
    assert.deepEqual(head.blockers.map((b) => b.node), ['(graph output)']);
    assert.match(head.blockers[0]!.why, /model's output 'logits'/);
  });

  it('resnet_fused: the same groups with the folded Conv biases in place of BatchNormalization', async () => {
    const a = await analyzeFixture('resnet_fused');
    assert.equal(a.groups.length, 5);
    assert.deepEqual(memberSet(groupOf(a, '/stem/stem.0/stem.0.0/Conv', '/block1/conv2/conv2.0/Conv')), ['onnx::Conv_63:0', 'onnx::Conv_64:0', 'onnx::Conv_66:1', 'onnx::Conv_69:0', 'onnx::Conv_70:0', 'onnx::Conv_72:1', 'onnx::Conv_78:1']);
    assert.deepEqual(memberSet(groupOf(a, '/block1/conv1/conv1.0/Conv')), ['onnx::Conv_66:0', 'onnx::Conv_67:0', 'onnx::Conv_69:1']);
    assert.deepEqual(memberSet(groupOf(a, '/block2/conv1/conv1.0/Conv')), ['onnx::Conv_72:0', 'onnx::Conv_73:0', 'onnx::Conv_75:1']);
    assert.deepEqual(memberSet(groupOf(a, '/block2/conv2/conv2.0/Conv', '/block2/shortcut/shortcut.0/Conv')), ['head.weight:1', 'onnx::Conv_75:0', 'onnx::Conv_76:0', 'onnx::Conv_78:0', 'onnx::Conv_79:0']);
  });

  it('dwsep: the depthwise Conv follows its input channels (one group with the Conv before it)', async () => {
    const a = await analyzeFixture('dwsep');
    assert.equal(a.groups.length, 3);
    const g = groupOf(a, '/features/features.0/features.0.0/Conv', '/features/features.2/features.2.0/Conv');
    assert.equal(g.units, 16);
    assert.deepEqual(memberSet(g), ['features.0.0.weight:0', ...bn('features.0.1'), 'features.2.0.weight:0', ...bn('features.2.1'), 'features.4.0.weight:1'].sort());
    assert.deepEqual(memberSet(groupOf(a, '/features/features.4/features.4.0/Conv')), ['features.4.0.weight:0', ...bn('features.4.1'), 'head.weight:1'].sort());
  });

  it('mlp: each hidden layer is a group (W1 rows, b1, W2 columns); the input and the logits stay whole', async () => {
    const a = await analyzeFixture('mlp');
    assert.deepEqual(
      a.groups.map((g) => [g.kind, g.units, memberSet(g), g.blockers.length > 0]),
      [
        ['units', 64, ['1.bias:0', '1.weight:0', '3.weight:1'], false],
        ['units', 32, ['3.bias:0', '3.weight:0', '5.weight:1'], false],
        ['units', 10, ['5.bias:0', '5.weight:0'], true],
      ],
    );
  });

  it("rnn: each recurrent layer's hidden units are a group — every gate's rows of W and R, R's columns, both bias halves, the next layer's input columns (both directions' blocks); the gates are not units", async () => {
    const a = await analyzeFixture('rnn');
    assert.deepEqual(
      a.groups.map((g) => [g.kind, g.units, g.producers, memberSet(g), g.blockers.length > 0]),
      [
        // Bidirectional, hidden 12: W [2, 4·12, 28], R [2, 48, 12], B [2, 2·48]; the GRU reads [fw 12 | bw 12].
        ['units', 12, ['/lstm/LSTM'], ['onnx::GRU_344:2', 'onnx::LSTM_322:1', 'onnx::LSTM_323:1', 'onnx::LSTM_324:1', 'onnx::LSTM_324:2'], false],
        ['units', 12, ['/gru/GRU'], ['onnx::GRU_344:1', 'onnx::GRU_345:1', 'onnx::GRU_345:2', 'onnx::GRU_346:1', 'onnx::RNN_350:2'], false],
        ['units', 12, ['/rnn/RNN'], ['head.weight:1', 'onnx::RNN_350:1', 'onnx::RNN_351:1', 'onnx::RNN_351:2', 'onnx::RNN_352:1'], false],
        ['units', 10, ['/head/Gemm'], ['head.bias:0', 'head.weight:0'], true],
      ],
    );
    const lstm = groupOf(a, '/lstm/LSTM');
    // Each unit appears once per gate and direction in W's rows, twice more in B (Wb | Rb), and once per direction in the GRU's columns.
    assert.deepEqual(lstm.members.map((m) => [m.tensor, m.axis, m.indices]).sort(), [
      ['onnx::GRU_344', 2, 24],
      ['onnx::LSTM_322', 1, 96],
      ['onnx::LSTM_323', 1, 48],
      ['onnx::LSTM_324', 1, 48],
      ['onnx::LSTM_324', 2, 12],
    ]);
  });

  for (const [fixture, layerNorm, matmuls] of [
    ['vit13', 'ReduceMean', ['onnx::MatMul_347', 'onnx::MatMul_348', 'onnx::MatMul_349', 'onnx::MatMul_350', 'onnx::MatMul_351', 'onnx::MatMul_352']],
    ['vit17', 'LayerNormalization', ['onnx::MatMul_297', 'onnx::MatMul_298', 'onnx::MatMul_299', 'onnx::MatMul_300', 'onnx::MatMul_301', 'onnx::MatMul_302']],
  ] as const) {
    it(`${fixture}: whole heads (q, k, v column blocks and out-projection columns), MLP units; the residual width stays whole (${layerNorm})`, async () => {
      const a = await analyzeFixture(fixture);
      for (const layer of [0, 1]) {
        const [inProj, fc1, fc2] = matmuls.slice(3 * layer, 3 * layer + 3) as [string, string, string];
        const p = `encoder.layers.${layer}`;
        const attn = `/encoder/layers.${layer}/self_attn/MatMul`;
        const groups = a.groups.filter((g) => g.producers.length === 1 && g.producers[0] === attn);
        assert.deepEqual(groups.map((g) => [g.kind, g.units]).sort(), [['headDims', 8], ['headDims', 8], ['heads', 4]]);
        const heads = groups.find((g) => g.kind === 'heads')!;
        assert.deepEqual(memberSet(heads), [`${inProj}:1`, `${p}.self_attn.in_proj_bias:0`, `${p}.self_attn.out_proj.weight:1`].sort());
        assert.deepEqual(heads.blockers, []);
        // Column c of the packed in-projection (q | k | v, 32 each) belongs to head (c mod 32) div 8;
        // out-projection column j (the attention output's feature j) to head j div 8.
        assert.deepEqual(unitsAlong(a, heads, inProj, 1), range(96, (c) => Math.floor((c % 32) / 8)));
        assert.deepEqual(unitsAlong(a, heads, `${p}.self_attn.in_proj_bias`, 0), range(96, (c) => Math.floor((c % 32) / 8)));
        assert.deepEqual(unitsAlong(a, heads, `${p}.self_attn.out_proj.weight`, 1), range(32, (j) => Math.floor(j / 8)));
        // Head dimensions: q and k's are tied by q·kᵀ, v's by the out-projection.
        const [qk, v] = groups.filter((g) => g.kind === 'headDims').sort((x, y) => x.members.length - y.members.length);
        assert.deepEqual(memberSet(qk!), [`${inProj}:1`, `${p}.self_attn.in_proj_bias:0`].sort());
        assert.deepEqual(unitsAlong(a, qk!, inProj, 1), range(96, (c) => (c < 64 ? c % 8 : -1)));
        assert.deepEqual(unitsAlong(a, v!, inProj, 1), range(96, (c) => (c >= 64 ? c % 8 : -1)));
        assert.deepEqual(unitsAlong(a, v!, `${p}.self_attn.out_proj.weight`, 1), range(32, (j) => j % 8));
        const mlp = groupOf(a, `/encoder/layers.${layer}/linear1/MatMul`);
        assert.equal(mlp.kind, 'units');
        assert.equal(mlp.units, 64);
        // Through GELU (Div, Erf, Add, Mul, Mul): W1 columns, b1, W2 rows.
        assert.deepEqual(memberSet(mlp), [`${fc1}:1`, `${fc2}:0`, `${p}.linear1.bias:0`].sort());
        assert.deepEqual(mlp.blockers, []);
      }
      // The residual stream: patch embedding, class token, position embedding, every out-projection
      // and FF output, every norm — left whole, because each norm averages over it.
      const width = a.groups.find((g) => g.producers.includes('/patch/Conv'))!;
      assert.deepEqual(width.producers, ['/patch/Conv', '/encoder/layers.0/self_attn/Gemm', '/encoder/layers.0/linear2/MatMul', '/encoder/layers.1/self_attn/Gemm', '/encoder/layers.1/linear2/MatMul']);
      for (const t of ['cls_token:2', 'pos_embed:2', 'patch.weight:0', 'patch.bias:0', 'norm.weight:0', 'head.weight:1', `${matmuls[0]}:0`, `${matmuls[2]}:1`]) assert.ok(memberSet(width).includes(t), t);
      assert.ok(width.blockers.length > 0);
      assert.ok(width.blockers.every((b) => b.op === layerNorm), JSON.stringify(width.blockers));
      assert.match(width.blockers[0]!.node, /norm1/);
      assert.equal(a.groups.length, 1 + 2 * 4 + 1);
    });
  }
});

describe('channel dependency groups of patterns the fixtures lack', () => {
  it('Flatten of a feature map ties each channel to its block of H×W Gemm columns', async () => {
    const a = await analyzeProto(
      model([1, 4, 4], 'logits', 3, [node('Conv', ['input', 'w', 'b'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), node('Relu', ['c'], ['r']), node('Flatten', ['r'], ['f']), node('Gemm', ['f', 'fc', 'fcb'], ['logits'], { transB: 1 })], {
        w: weight([5, 1, 3, 3], 1),
        b: weight([5], 2),
        fc: weight([3, 80], 3),
        fcb: weight([3], 4),
      }),
    );
    const g = groupOf(a, 'c');
    assert.deepEqual(memberSet(g), ['b:0', 'fc:1', 'w:0']);
    assert.deepEqual(unitsAlong(a, g, 'fc', 1), range(80, (j) => Math.floor(j / 16)));
  });

  it("weights torch's export merged because they start equal (a zero bias and an Identity of it) are separated: the layers sharing them stay separate groups", async () => {
    const zeros = new Tensor(new Float32Array(4), [4], 'float32');
    const a = await analyzeProto(
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1', 'b1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c1'], ['r1']),
        node('Identity', ['b1'], ['b2']),
        node('Conv', ['r1', 'w2', 'b2'], ['c2'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        node('Relu', ['c2'], ['r2']),
        node('GlobalAveragePool', ['r2'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), b1: zeros, w2: weight([4, 4, 3, 3], 2), fc: weight([3, 4], 3) }),
    );
    assert.deepEqual(memberSet(groupOf(a, 'c1')), ['b1:0', 'w1:0', 'w2:1']);
    assert.deepEqual(memberSet(groupOf(a, 'c2')), ['b2:0', 'fc:1', 'w2:0']);
  });

  it('Concat places each input at its offset; a grouped Conv ties channels group by group', async () => {
    const concatThenGrouped = (c1: number, c2: number) =>
      analyzeProto(
        model([2, 4, 4], 'logits', 3, [
          node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [1, 1] }),
          node('Conv', ['input', 'w2'], ['c2'], { kernel_shape: [1, 1] }),
          node('Concat', ['c1', 'c2'], ['cat'], { axis: 1 }),
          node('Conv', ['cat', 'w3'], ['c3'], { kernel_shape: [1, 1], group: 2 }),
          node('GlobalAveragePool', ['c3'], ['p']),
          node('Flatten', ['p'], ['f']),
          node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
        ], { w1: weight([c1, 2, 1, 1], 1), w2: weight([c2, 2, 1, 1], 2), w3: weight([4, (c1 + c2) / 2, 1, 1], 3), fc: weight([3, 4], 4) }),
      );
    // cat = [c1 (3) | c2 (3)] is the grouped Conv's 2 groups of 3: channel j of c1 and of c2 share the
    // weight's column j, so they are one group of 3.
    const a = await concatThenGrouped(3, 3);
    const inputs = groupOf(a, 'c1', 'c2');
    assert.deepEqual(memberSet(inputs), ['w1:0', 'w2:0', 'w3:1']);
    assert.deepEqual(unitsAlong(a, inputs, 'w3', 1), [0, 1, 2]);
    assert.deepEqual(inputs.blockers, []);
    // Its 4 outputs are 2 groups × 2: unit j is row j of each group, and column j of each group's block in fc.
    const outputs = groupOf(a, 'c3');
    assert.equal(outputs.units, 2);
    assert.deepEqual(unitsAlong(a, outputs, 'w3', 0), [0, 1, 0, 1]);
    assert.deepEqual(unitsAlong(a, outputs, 'fc', 1), [0, 1, 0, 1]);
    // [c1 (2) | c2 (4)] cuts through the Conv's first group: left whole, with the reason.
    const b = await concatThenGrouped(2, 4);
    const c1 = groupOf(b, 'c1');
    assert.deepEqual(memberSet(c1), ['w1:0']);
    assert.ok(c1.blockers.some((x) => x.node === 'c3' && /cuts through an inner factor/.test(x.why)), JSON.stringify(c1.blockers));
  });

  it('an op the analysis does not follow leaves the groups it touches whole, naming the node and why', async () => {
    const a = await analyzeProto(convBehindLrnModel());
    const touched = groupOf(a, 'c1');
    assert.deepEqual(touched.blockers, [{ node: 'local_response_norm', op: 'LRN', why: 'LRN is not an op the analysis follows' }]);
    assert.deepEqual(groupOf(a, 'c2').blockers, []);
  });

  it("a recurrent layer's given initial state joins its group; peepholes leave the layer whole, saying so", async () => {
    const lstm = (peepholes: boolean) =>
      model([5, 4], 'logits', 3, [
        node('Transpose', ['input'], ['steps'], { perm: [1, 0, 2] }),
        // An initial state computed from the data: a projection of the steps' mean, [1, N, 6].
        node('ReduceMean', ['steps'], ['mean'], { axes: [0], keepdims: 1 }),
        { ...node('MatMul', ['mean', 'hw'], ['h0']), name: 'h0' },
        { ...node('LSTM', ['steps', 'w', 'r', 'b', '', 'h0', '', ...(peepholes ? ['p'] : [])], ['y', 'yh'], { hidden_size: 6 }), name: 'lstm' },
        node('Transpose', ['yh'], ['last'], { perm: [1, 0, 2] }),
        node('Flatten', ['last'], ['f']),
        { ...node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }), name: 'fc' },
      ], { w: weight([1, 24, 4], 1), r: weight([1, 24, 6], 2), b: weight([1, 48], 3), hw: weight([4, 6], 4), p: weight([1, 18], 5), fc: weight([3, 6], 6) });
    const a = await analyzeProto(lstm(false));
    // The state's projection makes the same units: one group of the layer and the MatMul.
    assert.deepEqual(memberSet(groupOf(a, 'h0', 'lstm')), ['b:1', 'fc:1', 'hw:1', 'r:1', 'r:2', 'w:1']);
    assert.deepEqual(groupOf(a, 'h0', 'lstm').blockers, []);
    const whole = await analyzeProto(lstm(true));
    // Not followed, the layer's units are no group; the state's projection, which it reads, stays whole.
    assert.deepEqual(groupOf(whole, 'h0').blockers, [{ node: 'lstm', op: 'LSTM', why: 'the analysis cannot follow it: an LSTM with peepholes' }]);
  });

  it('per-channel values made by a Constant node leave their group whole', async () => {
    const scale = new Tensor(Float32Array.from([1, 2, 3, 4]), [1, 4, 1, 1], 'float32');
    const a = await analyzeProto(
      model([1, 4, 4], 'logits', 3, [
        node('Conv', ['input', 'w1'], ['c1'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }),
        { opType: 'Constant', name: 'scale', input: [], output: ['s'], attribute: [{ name: 'value', type: 4, t: tensorToProto('s', scale) }] },
        node('Mul', ['c1', 's'], ['m']),
        node('GlobalAveragePool', ['m'], ['p']),
        node('Flatten', ['p'], ['f']),
        node('Gemm', ['f', 'fc'], ['logits'], { transB: 1 }),
      ], { w1: weight([4, 1, 3, 3], 1), fc: weight([3, 4], 3) }),
    );
    assert.deepEqual(groupOf(a, 'c1').blockers.map((b) => [b.node, b.op]), [['scale', 'Constant']]);
  });
});
