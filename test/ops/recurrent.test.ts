/**
 * Shape rules of the recurrent layers (src/ops/recurrent.ts): Kiln's shapes of Y, Y_h and Y_c equal
 * what ONNX Runtime returns, one direction and both; the hidden size read from R when the attribute
 * is left out (the spec allows it, ONNX Runtime's kernels do not); layout 1
 * (which ONNX Runtime's kernels refuse) against the spec's shapes by hand; bad ranks named. They have
 * no gradient rule: training unrolls them (test/model/recurrent.test.ts).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { opDefinition } from '../../src/ops/index.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { runGraph } from '../autodiff/gradcheck.js';
import { assertThrowsKiln } from '../model/helpers.js';

const runtime = new Runtime();
after(() => runtime.close());

const GATES = { LSTM: 4, GRU: 3, RNN: 1 } as const;
const OUTPUTS = { LSTM: 3, GRU: 2, RNN: 2 } as const;
const filled = (shape: number[]) => new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.2), shape, 'float32');

/** A recurrent node over x [T=5, N=3, I=4] (or [N, T, I] for layout 1) with hidden size 6. */
function recurrent(type: keyof typeof GATES, direction: string, layout: 0 | 1, hiddenAttr: boolean) {
  const g = new Graph(`${type}-${direction}`);
  const dirs = direction === 'bidirectional' ? 2 : 1;
  const x = g.input('x', 'float32', layout === 0 ? [5, 'batch', 4] : ['batch', 5, 4]);
  const w = g.initializer('w', filled([dirs, GATES[type] * 6, 4]));
  const r = g.initializer('r', filled([dirs, GATES[type] * 6, 6]));
  const outs = g.op(type, [x, w, r], { direction, ...(layout ? { layout } : {}), ...(hiddenAttr ? { hidden_size: 6 } : {}) }, { outputs: OUTPUTS[type] });
  outs.forEach((o, k) => g.output(o, `out${k}`));
  return { g, outs };
}

describe('recurrent shape rules', () => {
  for (const type of ['LSTM', 'GRU', 'RNN'] as const) {
    for (const direction of ['forward', 'reverse', 'bidirectional']) {
      it(`${type} ${direction}: Y, Y_h${type === 'LSTM' ? ', Y_c' : ''} as ONNX Runtime returns them`, async () => {
        for (const hiddenAttr of [true, false]) {
          const { g, outs } = recurrent(type, direction, 0, hiddenAttr);
          const dirs = direction === 'bidirectional' ? 2 : 1;
          const state = [dirs, 'batch', 6];
          assert.deepEqual(outs.map((o) => o.shape), [[5, dirs, 'batch', 6], state, ...(type === 'LSTM' ? [state] : [])]);
          // ONNX Runtime's kernels require hidden_size (the spec does not): without it, Kiln's shapes alone.
          if (!hiddenAttr) continue;
          const ran = await runGraph(runtime, g, { x: filled([5, 3, 4]) });
          outs.forEach((o, k) => assert.deepEqual(ran[`out${k}`]!.shape, o.shape!.map((d) => (d === 'batch' ? 3 : d))));
        }
      });
    }
    it(`${type} layout 1: batch first, as the spec gives it`, () => {
      const { outs } = recurrent(type, 'bidirectional', 1, true);
      assert.deepEqual(outs.map((o) => o.shape), [['batch', 5, 2, 6], ['batch', 2, 6], ...(type === 'LSTM' ? [['batch', 2, 6]] : [])]);
    });
  }

  it('no gradient rule: training unrolls them', () => {
    for (const type of ['LSTM', 'GRU', 'RNN']) assert.equal(opDefinition(type)?.gradient, undefined);
  });

  it('names a wrong rank and a W that does not match the direction', () => {
    const g = new Graph('bad');
    const x = g.input('x', 'float32', [5, 4]);
    assertThrowsKiln(() => g.op('LSTM', [x, g.initializer('w', filled([1, 24, 4])), g.initializer('r', filled([1, 24, 6]))], { hidden_size: 6 }, { outputs: 2 }), 'INVALID_SHAPE', 'LSTM: input X must have rank 3', '[5, 4]');
    const x3 = g.input('x3', 'float32', [5, 2, 4]);
    assertThrowsKiln(() => g.op('GRU', [x3, g.initializer('w2', filled([1, 18, 4])), g.initializer('r2', filled([1, 18, 6]))], { hidden_size: 6, direction: 'bidirectional' }, { outputs: 2 }), 'INVALID_SHAPE', "W's first dimension is 1, but direction 'bidirectional' has 2");
  });
});
