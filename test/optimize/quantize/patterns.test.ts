/**
 * Finding transformer blocks in a graph (src/optimize/quantize/patterns.ts): PyTorch's decomposed
 * LayerNorm with and without its affine part, GELU's exact form in the ways exporters write it, and
 * look-alikes that must not be taken for them (another exponent, another scale).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph, type Value } from '../../../src/graph/graph.js';
import { findBlocks } from '../../../src/optimize/quantize/patterns.js';
import { Tensor } from '../../../src/tensor.js';

const vector = (g: Graph, n: number, v: number) => g.constant(new Tensor(new Float32Array(n).fill(v), [n], 'float32'), 'vec');

/** PyTorch's LayerNorm export before opset 17: mean, centre, variance, divide, then γ and β. */
function layerNorm(g: Graph, x: Value, { exponent = 2, affine = true } = {}): Value {
  const mean = g.op1('ReduceMean', [x], { axes: [-1], keepdims: 1 });
  const d = g.op1('Sub', [x, mean]);
  const variance = g.op1('ReduceMean', [g.op1('Pow', [d, g.scalar(exponent)])], { axes: [-1], keepdims: 1 });
  const y = g.op1('Div', [d, g.op1('Sqrt', [g.op1('Add', [variance, g.scalar(1e-5)])])]);
  return affine ? g.op1('Add', [g.op1('Mul', [y, vector(g, 8, 1.5)]), vector(g, 8, 0.1)]) : y;
}

function graphWith(build: (g: Graph, x: Value) => Value): Graph {
  const g = new Graph('g');
  const x = g.input('x', 'float32', ['N', 8]);
  g.output(g.op1('Relu', [build(g, g.op1('Relu', [x]))]));
  return g;
}

describe('findBlocks', () => {
  it("finds PyTorch's decomposed LayerNorm, with and without γ and β", () => {
    for (const affine of [true, false]) {
      const g = graphWith((g, x) => layerNorm(g, x, { affine }));
      const blocks = findBlocks(g);
      assert.equal(blocks.length, 1);
      const [b] = blocks;
      assert.equal(b!.kind, 'LayerNormalization');
      assert.deepEqual(b!.nodes.map((n) => n.opType), ['ReduceMean', 'Sub', 'Pow', 'ReduceMean', 'Add', 'Sqrt', 'Div', ...(affine ? ['Mul', 'Add'] : [])]);
      assert.equal(b!.input, g.nodes[0]!.outputs[0], 'its input is what the first Relu produced');
      assert.equal(b!.output, g.nodes.at(-1)!.inputs[0], 'its output is what the last Relu reads');
    }
  });
  it('takes a LayerNormalization node as a block of one', () => {
    const g = graphWith((g, x) => g.op1('LayerNormalization', [x, vector(g, 8, 1), vector(g, 8, 0)], { axis: -1, epsilon: 1e-5 }));
    assert.deepEqual(findBlocks(g).map((b) => [b.kind, b.nodes.length]), [['LayerNormalization', 1]]);
  });
  it('finds GELU written x/√2, x·(1/√2), and with the ½ first', () => {
    const forms: [string, (g: Graph, x: Value) => Value][] = [
      ['Div,Erf,Add,Mul,Mul', (g, x) => g.op1('Mul', [g.op1('Mul', [x, g.op1('Add', [g.op1('Erf', [g.op1('Div', [x, g.scalar(Math.SQRT2)])]), g.scalar(1)])]), g.scalar(0.5)])],
      ['Mul,Erf,Add,Mul,Mul', (g, x) => g.op1('Mul', [g.op1('Mul', [x, g.op1('Add', [g.op1('Erf', [g.op1('Mul', [x, g.scalar(Math.SQRT1_2)])]), g.scalar(1)])]), g.scalar(0.5)])],
      ['Mul,Div,Erf,Add,Mul', (g, x) => g.op1('Mul', [g.op1('Mul', [x, g.scalar(0.5)]), g.op1('Add', [g.op1('Erf', [g.op1('Div', [x, g.scalar(Math.SQRT2)])]), g.scalar(1)])])],
    ];
    for (const [ops, build] of forms) {
      const g = graphWith(build);
      const blocks = findBlocks(g);
      assert.deepEqual(blocks.map((b) => [b.kind, b.nodes.map((n) => n.opType).join(',')]), [['Gelu', ops]], ops);
      assert.equal(blocks[0]!.output, g.nodes.at(-1)!.inputs[0]);
    }
  });
  it('leaves look-alikes alone: a cube instead of a square, erf(x/2), erf + 2', () => {
    assert.deepEqual(findBlocks(graphWith((g, x) => layerNorm(g, x, { exponent: 3 }))), []);
    assert.deepEqual(findBlocks(graphWith((g, x) => g.op1('Mul', [g.op1('Mul', [x, g.op1('Add', [g.op1('Erf', [g.op1('Div', [x, g.scalar(2)])]), g.scalar(1)])]), g.scalar(0.5)]))), []);
    assert.deepEqual(findBlocks(graphWith((g, x) => g.op1('Mul', [g.op1('Mul', [x, g.op1('Add', [g.op1('Erf', [g.op1('Div', [x, g.scalar(Math.SQRT2)])]), g.scalar(2)])]), g.scalar(0.5)]))), []);
  });
});
