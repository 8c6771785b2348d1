/**
 * Conv's gradient rule (src/ops/conv.ts) against finite differences: the input gradient (a
 * ConvTranspose whose output_padding restores what the stride skipped) and the weight gradient (one
 * im2col Gemm, per group for grouped convolutions), over strides, pads, dilations and groups. Up to 4
 * input channels the weight gradient gathers patches with a one-hot grouped Conv and a batched MatMul
 * instead of the Slices: the first block covers that path, the second the general one (5+ channels).
 */
import { after, describe, it } from 'node:test';
import { Runtime } from '../../src/runtime/runtime.js';
import type { Attrs } from '../../src/graph/graph.js';
import { assertGradients } from '../autodiff/gradcheck.js';

const runtime = new Runtime();
after(() => runtime.close());

function convCase(x: number[], w: number[], attrs: Attrs, bias: boolean) {
  return {
    inputs: { x: { shape: x }, w: { shape: w }, ...(bias ? { b: { shape: [w[0]!] } } : {}) },
    build: (g: import('../../src/graph/graph.js').Graph, v: Record<string, import('../../src/graph/graph.js').Value>) =>
      g.op1('Conv', bias ? [v.x!, v.w!, v.b!] : [v.x!, v.w!], attrs),
  };
}

describe('Conv gradient', () => {
  it('stride 1, no padding, with bias', async () => {
    await assertGradients(runtime, convCase([2, 3, 5, 5], [4, 3, 3, 3], { kernel_shape: [3, 3] }, true));
  });

  it('stride 2 with pads 1 (the forward skips the last row and column: output_padding 1)', async () => {
    await assertGradients(runtime, convCase([1, 2, 6, 6], [3, 2, 3, 3], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, true));
  });

  it('stride 2 without padding on an even input', async () => {
    await assertGradients(runtime, convCase([2, 2, 6, 6], [2, 2, 3, 3], { strides: [2, 2] }, false));
  });

  it('dilations 2', async () => {
    await assertGradients(runtime, convCase([1, 2, 7, 7], [2, 2, 3, 3], { dilations: [2, 2] }, true));
  });

  it('dilations 2 with stride 2 and pads', async () => {
    await assertGradients(runtime, convCase([1, 2, 8, 8], [2, 2, 3, 3], { dilations: [2, 2], strides: [2, 2], pads: [2, 2, 2, 2] }, false));
  });

  it('group 2 with bias', async () => {
    await assertGradients(runtime, convCase([2, 4, 5, 5], [4, 2, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, true));
  });

  it('group 2 without bias, stride 2', async () => {
    await assertGradients(runtime, convCase([1, 4, 6, 6], [6, 2, 2, 2], { group: 2, strides: [2, 2] }, false));
  });

  it('without bias, 2x2 kernel', async () => {
    await assertGradients(runtime, convCase([2, 2, 4, 4], [3, 2, 2, 2], {}, false));
  });

  it('rectangular kernel, unequal strides and asymmetric (TensorFlow "same") pads', async () => {
    await assertGradients(runtime, convCase([1, 2, 5, 6], [2, 2, 2, 3], { strides: [1, 2], pads: [0, 1, 1, 1] }, true));
  });

  it('1x1 kernel', async () => {
    await assertGradients(runtime, convCase([2, 3, 3, 3], [2, 3, 1, 1], {}, true));
  });

  it('a symbolic batch dimension, as in training graphs', async () => {
    await assertGradients(runtime, { ...convCase([3, 2, 5, 5], [2, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, true), symbolicBatch: ['x'] });
  });
});

describe('Conv gradient with more than 4 input channels (im2col by Slices + one Gemm)', () => {
  it('stride 1, no padding, with bias', async () => {
    await assertGradients(runtime, convCase([2, 5, 5, 5], [3, 5, 3, 3], { kernel_shape: [3, 3] }, true));
  });
  it('stride 2 with pads 1', async () => {
    await assertGradients(runtime, convCase([1, 6, 6, 6], [2, 6, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1] }, false));
  });
  it('dilations 2 with stride 2 and pads', async () => {
    await assertGradients(runtime, convCase([1, 5, 8, 8], [2, 5, 3, 3], { dilations: [2, 2], strides: [2, 2], pads: [2, 2, 2, 2] }, true));
  });
  it('rectangular kernel, unequal strides, asymmetric pads, symbolic batch', async () => {
    await assertGradients(runtime, { ...convCase([2, 5, 5, 6], [2, 5, 2, 3], { strides: [1, 2], pads: [0, 1, 1, 1] }, true), symbolicBatch: ['x'] });
  });
  it('group 2 with 5 channels per group', async () => {
    await assertGradients(runtime, convCase([1, 10, 4, 4], [4, 5, 3, 3], { group: 2, pads: [1, 1, 1, 1] }, false));
  });
});
