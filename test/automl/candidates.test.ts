/** The compression candidates, their names and search order, and the Pareto front, against hand-worked cases. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { allConfigs, configName, searchOrder } from '../../src/automl/candidates.js';
import { dominates, paretoFront } from '../../src/automl/pareto.js';

describe('candidates', () => {
  it('are every combination of a narrow model, a sparsity and a quantization, the original left out', () => {
    const all = allConfigs({ pruneRatios: [0.5], studentRatios: [0.25], sparsities: [0.8] });
    // (none, pruned50, student25) × (0, 0.8) × (none, float16, int8) − the original itself.
    assert.equal(all.length, 3 * 2 * 3 - 1);
    assert.deepEqual(
      all.slice(0, 6).map(configName),
      ['float-fp16', 'float-int8', 'float-sparse80', 'float-sparse80-fp16', 'float-sparse80-int8', 'pruned50'],
    );
    assert.ok(all.map(configName).includes('student25-sparse80-int8'));
  });

  it('are tried with sparsity last when the objective is latency (it buys no speed), students last among the narrow models', () => {
    const order = searchOrder(allConfigs({ pruneRatios: [0.5], studentRatios: [0.25], sparsities: [0.8] }), 'latency').map(configName);
    assert.deepEqual(order.slice(0, 5), ['float-int8', 'float-fp16', 'pruned50-int8', 'pruned50-fp16', 'pruned50']);
    const firstSparse = order.findIndex((n) => n.includes('sparse'));
    assert.ok(order.slice(firstSparse).every((n) => n.includes('sparse')), order.join(' '));
    const size = searchOrder(allConfigs({ pruneRatios: [0.5], studentRatios: [], sparsities: [0.8] }), 'size').map(configName);
    assert.ok(size.indexOf('float-sparse80-int8') < size.indexOf('pruned50-int8'));
  });
});

describe('paretoFront', () => {
  const p = (name: string, accuracy: number, latencyMs1: number, latencyMs64: number, sizeBytes: number) => ({ name, accuracy, latencyMs1, latencyMs64, sizeBytes });
  it('keeps exactly the points no other beats on every axis', () => {
    const a = p('a', 0.9, 1, 10, 100);
    const b = p('b', 0.88, 0.5, 4, 30); // faster and smaller, less accurate: on the front
    const c = p('c', 0.87, 0.6, 5, 40); // b beats it everywhere
    const d = p('d', 0.9, 1, 10, 100); // a's twin: neither dominates the other
    const e = p('e', 0.85, 0.5, 4, 20); // smallest: on the front
    assert.equal(dominates(b, c), true);
    assert.equal(dominates(a, d), false);
    assert.deepEqual(paretoFront([a, b, c, d, e]).map((x) => x.name), ['a', 'b', 'd', 'e']);
  });
});
