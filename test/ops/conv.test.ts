/**
 * Conv's gradient rule (src/ops/conv.ts) against finite differences: the input gradient (a
 * ConvTranspose whose output_padding restores what the stride skipped) and the weight gradient (one
 * im2col Gemm, per group for grouped convolutions), over strides, pads, dilations and groups. Up to 4
 * input channels the weight gradient gathers patches with a one-hot grouped Conv and a batched MatMul
 * instead of the Slices: the first block covers that path, the second the general one (5+ channels).
 * 1-D and 3-D convolutions take the same formulations over their own number of spatial axes.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { addGradients } from '../../src/autodiff/gradients.js';
import { Graph } from '../../src/graph/graph.js';
import { resolvedPads } from '../../src/graph/spatial-pads.js';
import { Runtime } from '../../src/runtime/runtime.js';
import type { Attrs } from '../../src/graph/graph.js';
import { assertGradients } from '../autodiff/gradcheck.js';

/** The ops whose gradient rules this file checks against finite differences (test/autodiff/gradients.test.ts reads this). */
export const GRADIENT_CHECKED = ['Conv', 'ConvTranspose'];

const runtime = new Runtime();
after(() => runtime.close());

function convCase(x: number[], w: number[], attrs: Attrs, bias: boolean, op: 'Conv' | 'ConvTranspose' = 'Conv') {
  // A ConvTranspose's bias has one value per output channel: W [C_in, C_out/group, k…].
  const channels = op === 'Conv' ? w[0]! : w[1]! * Number(attrs.group ?? 1);
  return {
    inputs: { x: { shape: x }, w: { shape: w }, ...(bias ? { b: { shape: [channels] } } : {}) },
    build: (g: import('../../src/graph/graph.js').Graph, v: Record<string, import('../../src/graph/graph.js').Value>) =>
      g.op1(op, bias ? [v.x!, v.w!, v.b!] : [v.x!, v.w!], attrs),
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

/*
 * auto_pad (tf2onnx writes SAME for Keras' padding='same'): ONNX pads to an output of ceil(in/stride),
 * total max(0, (ceil(in/s)-1)·s + (k-1)·d + 1 - in), the odd unit at the end (SAME_UPPER) or the
 * beginning (SAME_LOWER). The shapes are ONNX's backend cases; the gradients see the resolved pads.
 */
describe('Conv and ConvTranspose auto_pad shapes', () => {
  const shapeOf = (op: string, x: number[], w: number[], attrs: Attrs) => {
    const g = new Graph('t');
    return g.op1(op, [g.input('x', 'float32', x), g.input('w', 'float32', w)], attrs).shape;
  };
  it('Conv SAME_LOWER / SAME_UPPER keep ceil(in/stride), VALID pads nothing (test_conv_with_autopad_same)', () => {
    assert.deepEqual(shapeOf('Conv', [1, 1, 5, 5], [1, 1, 3, 3], { auto_pad: 'SAME_LOWER', kernel_shape: [3, 3], strides: [2, 2] }), [1, 1, 3, 3]);
    assert.deepEqual(shapeOf('Conv', [1, 1, 6, 7], [2, 1, 4, 2], { auto_pad: 'SAME_UPPER' }), [1, 2, 6, 7]);
    assert.deepEqual(shapeOf('Conv', [1, 1, 5, 5], [1, 1, 3, 3], { auto_pad: 'VALID', strides: [2, 2] }), [1, 1, 2, 2]);
  });
  it('Conv SAME_UPPER keeps a symbolic batch and leaves a symbolic spatial size unknown', () => {
    assert.deepEqual(shapeOf('Conv', ['N' as never, 1, 5, 5], [1, 1, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }), ['N', 1, 3, 3]);
    assert.deepEqual(shapeOf('Conv', [1, 1, 'H' as never, 5], [1, 1, 3, 3], { auto_pad: 'SAME_UPPER' }), [1, 1, null, 5]);
  });
  it('ConvTranspose: SAME_* gives in·stride, output_shape is the output (test_convtranspose_autopad_same, _output_shape)', () => {
    assert.deepEqual(shapeOf('ConvTranspose', [1, 1, 3, 3], [1, 2, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }), [1, 2, 6, 6]);
    assert.deepEqual(shapeOf('ConvTranspose', [1, 1, 3, 3], [1, 2, 3, 3], { output_shape: [10, 8], strides: [3, 2] }), [1, 2, 10, 8]);
    assert.deepEqual(shapeOf('ConvTranspose', [1, 1, 3, 3], [1, 2, 3, 3], { strides: [3, 2], pads: [1, 2, 1, 2] }), [1, 2, 7, 3]);
  });
  it('resolvedPads puts the odd unit at the end for SAME_UPPER and at the beginning for SAME_LOWER', () => {
    assert.deepEqual(resolvedPads({ auto_pad: 'SAME_UPPER' }, [2, 3], [1, 2], [1, 1], [5, 5]), [0, 1, 1, 1]);
    assert.deepEqual(resolvedPads({ auto_pad: 'SAME_LOWER' }, [2, 3], [1, 2], [1, 1], [5, 5]), [1, 1, 0, 1]);
    assert.deepEqual(resolvedPads({ auto_pad: 'VALID', pads: [1, 1, 1, 1] }, [3, 3], [1, 1], [1, 1], [5, 5]), [0, 0, 0, 0]);
  });
});

describe('Conv gradient with auto_pad', () => {
  it('SAME_UPPER, stride 2 on an even input (pad only at the end)', async () => {
    await assertGradients(runtime, convCase([1, 2, 6, 6], [3, 2, 3, 3], { auto_pad: 'SAME_UPPER', strides: [2, 2] }, true));
  });
  it('SAME_LOWER, 2x2 kernel (pad only at the beginning)', async () => {
    await assertGradients(runtime, convCase([1, 2, 5, 5], [2, 2, 2, 2], { auto_pad: 'SAME_LOWER' }, false));
  });
});

describe('Conv gradient, depthwise and 1-D', () => {
  it('depthwise 3x3 (group = channels = 4), pads 1, with bias', async () => {
    await assertGradients(runtime, convCase([2, 4, 5, 5], [4, 1, 3, 3], { group: 4, pads: [1, 1, 1, 1] }, true));
  });
  it('depthwise stride 2, dilation 2, asymmetric pads, symbolic batch', async () => {
    await assertGradients(runtime, { ...convCase([2, 3, 7, 6], [3, 1, 3, 3], { group: 3, strides: [2, 2], dilations: [2, 2], pads: [2, 1, 1, 2] }, false), symbolicBatch: ['x'] });
  });
  // ONNX Runtime refuses dilations with auto_pad SAME_* ("Dilation not supported"), so no such case.
  it('depthwise stride 2, SAME_UPPER (Keras DepthwiseConv2D padding="same")', async () => {
    await assertGradients(runtime, convCase([1, 3, 6, 5], [3, 1, 3, 3], { group: 3, strides: [2, 2], auto_pad: 'SAME_UPPER' }, true));
  });
  it('depthwise with channel multiplier 2 (group 3, 6 filters: the grouped path)', async () => {
    await assertGradients(runtime, convCase([1, 3, 4, 4], [6, 1, 3, 3], { group: 3 }, true));
  });
  it('1-D convolution with stride 2, pads and bias', async () => {
    await assertGradients(runtime, convCase([2, 3, 9], [4, 3, 3], { strides: [2], pads: [1, 2] }, true));
  });
  it('1-D depthwise convolution with dilation 2', async () => {
    await assertGradients(runtime, convCase([2, 4, 8], [4, 1, 3], { group: 4, dilations: [2] }, false));
  });
  it('1-D grouped convolution with 6 channels per group (the general im2col path)', async () => {
    await assertGradients(runtime, convCase([1, 12, 6], [4, 6, 2], { group: 2 }, true));
  });
});

describe('Conv gradient, 3-D (volumes, video)', () => {
  it('few channels (the one-hot patch Conv), stride 2, pads, with bias', async () => {
    await assertGradients(runtime, convCase([2, 2, 5, 4, 5], [3, 2, 3, 2, 3], { strides: [2, 1, 2], pads: [1, 0, 1, 1, 1, 0] }, true));
  });
  it('more than 4 channels (im2col by Slices + one Gemm), dilation 2, symbolic batch', async () => {
    await assertGradients(runtime, { ...convCase([2, 5, 5, 4, 3], [2, 5, 2, 2, 2], { dilations: [2, 1, 1] }, false), symbolicBatch: ['x'] });
  });
  it('depthwise and grouped', async () => {
    await assertGradients(runtime, convCase([1, 3, 4, 4, 3], [3, 1, 3, 3, 1], { group: 3, pads: [1, 1, 0, 1, 1, 0] }, true));
    await assertGradients(runtime, convCase([1, 10, 3, 3, 3], [4, 5, 2, 2, 2], { group: 2 }, false));
  });
  it("the input gradient is a Conv over dy spread with zeros (ONNX Runtime's 3-D ConvTranspose is slow); pads wider than the kernel keep ConvTranspose", async () => {
    const opsOfGradient = (attrs: Attrs, w: number[]) => {
      const g = new Graph('conv3d');
      const x = g.input('x', 'float32', [1, 2, 5, 6, 6]);
      const weight = g.input('w', 'float32', w);
      const loss = g.op1('ReduceSum', [g.op1('Conv', [x, weight], attrs)], { keepdims: 0 });
      const before = g.nodes.length;
      addGradients(g, loss, [x]);
      return g.nodes.slice(before).map((n) => n.opType);
    };
    const spread = opsOfGradient({ strides: [1, 2, 2], pads: [1, 1, 1, 1, 1, 1] }, [4, 2, 3, 3, 3]);
    assert.ok(spread.includes('Conv') && !spread.includes('ConvTranspose'), spread.join(' '));
    assert.ok(opsOfGradient({ pads: [1, 1, 1, 1, 1, 1] }, [4, 2, 1, 1, 1]).includes('ConvTranspose'));
    await assertGradients(runtime, convCase([1, 2, 3, 4, 4], [3, 2, 1, 1, 1], { pads: [1, 1, 0, 0, 1, 1] }, true));
  });
});

describe('ConvTranspose gradient (dx a Conv of dy, dW a Conv weight gradient with dy and x swapped)', () => {
  const t = (x: number[], w: number[], attrs: Attrs, bias: boolean) => convCase(x, w, attrs, bias, 'ConvTranspose');
  it('stride 1, no padding, with bias', async () => {
    await assertGradients(runtime, t([2, 3, 4, 4], [3, 2, 3, 3], {}, true));
  });
  it("stride 2, pads 1, output_padding 1 (PyTorch's ConvTranspose2d(k=3, s=2, p=1, output_padding=1): 7 → 14)", async () => {
    await assertGradients(runtime, t([1, 5, 4, 4], [5, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, true));
  });
  it("kernel 2, stride 2 (a U-Net's upsampling), more than 4 output channels (the im2col path)", async () => {
    await assertGradients(runtime, t([2, 3, 3, 3], [3, 6, 2, 2], { strides: [2, 2] }, false));
  });
  it('dilations 2, stride 2, asymmetric pads', async () => {
    await assertGradients(runtime, t([1, 2, 4, 3], [2, 2, 3, 3], { strides: [2, 2], dilations: [2, 2], pads: [1, 2, 0, 1] }, true));
  });
  it('SAME_UPPER with a 1×1 kernel and stride 2: the output (in·stride) ends past what any input reaches', async () => {
    await assertGradients(runtime, t([1, 2, 3, 3], [2, 3, 1, 1], { strides: [2, 2], auto_pad: 'SAME_UPPER' }, true));
  });
  it('group 2, with bias', async () => {
    await assertGradients(runtime, t([2, 4, 3, 3], [4, 3, 3, 3], { group: 2, strides: [2, 2], pads: [1, 1, 1, 1] }, true));
  });
  it('depthwise (group = channels), stride 2', async () => {
    await assertGradients(runtime, t([2, 3, 3, 4], [3, 1, 3, 3], { group: 3, strides: [2, 2] }, true));
  });
  it('output_shape one larger than stride·(in−1) + span (ONNX test convtranspose_output_shape: the extra row is padding)', async () => {
    await assertGradients(runtime, t([1, 2, 3, 3], [2, 3, 3, 3], { strides: [3, 2], output_shape: [10, 8] }, false));
  });
  it('auto_pad SAME_UPPER and SAME_LOWER (output in·stride)', async () => {
    await assertGradients(runtime, t([1, 2, 3, 3], [2, 2, 3, 3], { strides: [2, 2], auto_pad: 'SAME_UPPER' }, true));
    await assertGradients(runtime, t([1, 2, 3, 3], [2, 2, 2, 2], { strides: [1, 1], auto_pad: 'SAME_LOWER' }, false));
  });
  it('1-D, stride 2, pads, output_padding, with bias', async () => {
    await assertGradients(runtime, t([2, 3, 5], [3, 4, 3], { strides: [2], pads: [1, 1], output_padding: [1] }, true));
  });
  it('a symbolic batch dimension, as in training graphs', async () => {
    await assertGradients(runtime, { ...t([3, 2, 3, 3], [2, 2, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] }, true), symbolicBatch: ['x'] });
  });
  it("3-D, stride 2, pads 1, output_padding 1 (a 3-D U-Net's decoder), with bias", async () => {
    await assertGradients(runtime, t([1, 3, 3, 2, 3], [3, 2, 3, 3, 3], { strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1], output_padding: [1, 1, 1] }, true));
  });
  it('3-D, kernel 2, stride 2, more than 4 output channels (the im2col path), symbolic batch', async () => {
    await assertGradients(runtime, { ...t([2, 3, 2, 2, 2], [3, 5, 2, 2, 2], { strides: [2, 2, 2] }, false), symbolicBatch: ['x'] });
  });
});
