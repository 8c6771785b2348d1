/**
 * The advice when a quantized model measures slower than float (src/optimize/quantize/faster-mode.ts):
 * which mode to use instead, from measurements — here fabricated ones, so the wording and the choice are
 * checked without racing the clock — and suggestFasterMode measuring the other int8 mode for real.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Comparison } from '../../../src/optimize/quantize/evaluate.js';
import { alternativeMode, fasterModeAdvice, suggestFasterMode } from '../../../src/optimize/quantize/faster-mode.js';
import { quantize } from '../../../src/optimize/quantize/quantize.js';
import { loadModel } from '../../../src/train/load.js';
import { EXPORTED_DIR } from '../../fixtures/exported/reference.js';
import { fashion } from './helpers.js';

/** A comparison whose float run took `floatMs` and quantized run `quantMs`. */
function measured(floatMs: number, quantMs: number, accuracy: [number, number] = [0.9, 0.9]): Comparison {
  return { before: { latencyMs: floatMs, accuracy: accuracy[0] }, after: { latencyMs: quantMs, accuracy: accuracy[1] }, batchSize: 64, agreement: 1, maxAbsDiff: 0, maxAbsFloat: 1, runtimeOps: { before: {}, after: {} } };
}

describe('fasterModeAdvice', () => {
  it('sends a CNN from slow dynamic int8 to static int8 when static measured faster than float', () => {
    // The issue's measurement on an AVX-512 VNNI CPU: dynamic at 0.13× float's speed, static at 1.8×.
    const advice = fasterModeAdvice({ mode: 'dynamic', comparison: measured(1, 1 / 0.13), compression: 3.6 }, { mode: 'static', comparison: measured(1, 1 / 1.8, [0.9, 0.8985]), compression: 3.7 });
    assert.equal(advice, "dynamic int8 runs at 0.13× float32's speed on this CPU (batch 64); static int8 measured 1.80× just now, -0.15 points of accuracy, 3.70× smaller: use --mode static for speed.");
  });
  it('says to keep float32 for speed when neither int8 mode beats it', () => {
    const advice = fasterModeAdvice({ mode: 'static', comparison: measured(2, 2.5), compression: 1.25 }, { mode: 'dynamic', comparison: measured(2, 2.2), compression: 1.45 });
    assert.match(advice!, /^static int8 runs at 0\.80× float32's speed on this CPU \(batch 64\); dynamic int8 measured 0\.91× just now, \+0\.00 points of accuracy, 1\.45× smaller: neither int8 mode is faster than float32 here, so keep the float32 model for speed \(int8 buys size: 1\.25× smaller\)\.$/);
  });
  it('gives no advice within the timing noise, and float32 when there is nothing to try', () => {
    assert.equal(fasterModeAdvice({ mode: 'static', comparison: measured(1, 1.04), compression: 3 }), undefined);
    assert.equal(fasterModeAdvice({ mode: 'float16', comparison: measured(1, 1.5), compression: 2 }), "float16 runs at 0.67× float32's speed on this CPU (batch 64): keep the float32 model for speed (this mode buys size: 2.00× smaller).");
    assert.deepEqual(['static', 'dynamic', 'qat', 'float16'].map((m) => alternativeMode(m as never)), ['dynamic', 'static', 'dynamic', undefined]);
  });
});

describe('suggestFasterMode', () => {
  it('quantizes and measures the other int8 mode when the chosen one measured slower', async () => {
    const d = await fashion();
    const model = await loadModel(`${EXPORTED_DIR}/mlp.onnx`);
    const options = { mode: 'static' as const, calibration: d.train.images, calibrationSamples: 64, evaluate: { x: d.test.images.slice(0, 200), y: d.test.labels.slice(0, 200), latencyRuns: 2 } };
    const q = await quantize(model, options);
    assert.equal(await suggestFasterMode(model, { ...q.report, evaluation: measured(1, 1.02) }, options), undefined, 'not slower: nothing to do');
    // Told it was 2× slower, it measures dynamic int8 on the same data and quotes that measurement.
    const s = await suggestFasterMode(model, { ...q.report, evaluation: measured(1, 2) }, options);
    assert.equal(s?.alternative?.mode, 'dynamic');
    assert.equal(s.alternative.comparison.runtimeOps.after.DynamicQuantizeMatMul, 3, 'the alternative really ran: its fused kernels');
    assert.match(s.advice, /^static int8 runs at 0\.50× float32's speed on this CPU \(batch 64\); dynamic int8 measured [\d.]+× just now, [+-][\d.]+ points of accuracy, [\d.]+× smaller: /);
  });
});
