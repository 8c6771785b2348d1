import { KilnError, formatShape } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';
import { isTilingPool } from '../graph/pool-window.js';
import { spatialEndCrop } from '../graph/spatial-crop.js';
import { intAttr, intsAttr, requireInput, type OpDefinition } from '../graph/op-definition.js';
import { onnxTypeCode } from '../graph/dtype.js';
import { Tensor } from '../tensor.js';
import { convOutputSize, spatialAttrs, transposedConvolution } from './conv.js';

/** This file's op definitions, in the order they are written; src/ops/index.ts puts them in the op table. */
const ops: OpDefinition[] = [];
export const POOL_OPS: readonly OpDefinition[] = ops;

function poolInfer(type: string) {
  return (inputs: (Value | null)[], attrs: Record<string, unknown>) => {
    const x = requireInput(inputs, 0, type);
    const kernel = intsAttr(attrs as never, 'kernel_shape', []);
    if (!x.shape) return [{ dtype: x.dtype, shape: null }];
    const sa = spatialAttrs(attrs as never, kernel, x.shape.slice(2));
    const n = kernel.length;
    const ceil = intAttr(attrs as never, 'ceil_mode', 0) === 1;
    const spatial = x.shape.slice(2).map((d, i) =>
      typeof d === 'number' ? convOutputSize(d, kernel[i]!, sa.strides[i]!, sa.dilations[i]!, sa.pads[i]!, sa.pads[i + n]!, ceil) : null,
    );
    if (spatial.some((d) => typeof d === 'number' && d < 1)) {
      throw new KilnError('INVALID_SHAPE', `${type}: input ${formatShape(x.shape)} is smaller than the pool window ${formatShape(kernel)}`);
    }
    const out = [{ dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...spatial] }];
    return type === 'MaxPool' ? [...out, { dtype: 'int64' as const, shape: out[0]!.shape }] : out;
  };
}

/** Zero-pads a [N, C, h, w] gradient on the bottom/right to the input's spatial size (rows no window read). */
function padToInput(graph: Graph, v: Value, covered: number[], full: number[]): Value {
  const extra = full.map((f, i) => f - covered[i]!);
  if (extra.every((e) => e === 0)) return v;
  return graph.op1('Pad', [v, graph.int64s([0, 0, 0, 0, 0, 0, extra[0]!, extra[1]!], 'pads')]);
}

function cropToCovered(graph: Graph, x: Value, covered: number[], full: number[]): Value {
  if (covered.every((c, i) => c === full[i])) return x;
  return spatialEndCrop(graph, x, covered);
}

ops.push({
  type: 'MaxPool',
  infer: poolInfer('MaxPool'),
  /*
   * Exact (options.maxPoolTies 'first', the default): a window whose maximum occurs more than once
   * sends the gradient to its first occurrence in row-major order, as PyTorch does. Ties are common
   * on real images: over a blank background a convolution outputs its bias everywhere, and sending the
   * gradient to every tied position made the first convolution's gradient off by 1e-2 against
   * PyTorch. Square tiling windows over at most FEW_POOL_CHANNELS channels: SpaceToDepth, ArgMax,
   * DepthToSpace (firstMaximumGradient; FEW_POOL_CHANNELS says what was measured). Other windows
   * (more channels, overlapping, padded, ceil_mode): MaxPool's Indices output
   * and a ScatterElements with 'add'; of the exact formulations measured on the tutorial CNN that was
   * the fastest (an exclusive CumSum over each window's mask, and strided slices regrouped by
   * DepthToSpace, were 1.1–1.3× slower), but ONNX Runtime's Indices path is slow for small-channel
   * images (the exported ResNet's stem).
   * Tiling windows with maxPoolTies 'all' (Kiln's layer models): upsample the pooled output (Resize,
   * nearest), compare with the input to find the maxima, and multiply the upsampled gradient by that
   * mask — every tied position gets the gradient, and the step is 1.1–1.3× faster than the exact form
   * (bench/train/maxpool-ties.ts). 'asymmetric' + 'floor' is exact nearest-neighbour for integer
   * scales and takes ONNX Runtime's dedicated fast path (2.3–3× faster than Resize's default
   * coordinate mode here); SpaceToDepth / DepthToSpace and Transpose-based regroupings were slower.
   */
  gradient: ({ graph, node, inputs: [x], outputs: [y], gradOutputs: [dy], options }) => {
    const sa = spatialAttrs(node.attrs, intsAttr(node.attrs, 'kernel_shape', []), x!.shape?.slice(2));
    const xShape = x!.shape!;
    const full = [xShape[2] as number, xShape[3] as number];
    if (options.maxPoolTies === 'all' && sa.kernel.length === 2 && isTilingPool(node.attrs)) {
      const covered = [(y!.shape![2] as number) * sa.strides[0]!, (y!.shape![3] as number) * sa.strides[1]!];
      const scales = graph.constant(new Tensor(Float32Array.of(1, 1, sa.strides[0]!, sa.strides[1]!), [4], 'float32'), 'scales');
      const up = (v: Value) =>
        graph.op1('Resize', [v, '', scales], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
      const mask = graph.op1('Cast', [graph.op1('Equal', [cropToCovered(graph, x!, covered, full), up(y!)])], { to: 1 });
      return [padToInput(graph, graph.op1('Mul', [up(dy!), mask]), covered, full)];
    }
    const channels = xShape[1];
    if (sa.kernel.length === 2 && isTilingPool(node.attrs) && typeof channels === 'number' && channels <= FEW_POOL_CHANNELS) {
      const tiled = firstMaximumGradient(graph, x!, y!, dy!, sa.kernel as [number, number], full);
      if (tiled) return [tiled];
    }
    // Row-major indices whatever the node's storage_order (1: column-major), as the scatter below reads them.
    const [, indices] = graph.op('MaxPool', [x!], { ...node.attrs, storage_order: 0 }, { outputs: 2, name: 'maxpool_indices' });
    const xSize = graph.op1('Shape', [x!]);
    const flat = graph.int64s([-1], 'shape');
    const zeros = graph.op1('Mul', [graph.op1('Reshape', [x!, flat]), graph.scalar(0)]);
    const scattered = graph.op1('ScatterElements', [zeros, graph.op1('Reshape', [indices!, flat]), graph.op1('Reshape', [dy!, flat])], {
      axis: 0,
      reduction: 'add',
    });
    return [graph.op1('Reshape', [scattered, xSize])];
  },
});

/**
 * Up to this many channels the exact MaxPool gradient of a square tiling pool goes through
 * firstMaximumGradient. Measured: 8 channels (the exported ResNet's stem, bench/README.md) MaxPool
 * nodes + ScatterElements 6.4–7.4 ms → these five nodes + the forward MaxPool 2.9–3.0 ms;
 * 32 and 64 channels (`bench/train/maxpool-ties.js --rounds 4 --threads 1`, main against this form,
 * interleaved): the tutorial CNN's exact step 68.1, 62.0 → 67.0, 60.0 ms, the Fashion CNN's 38.9,
 * 39.4 → 47.5, 43.6 ms — no gain there, so those keep MaxPool's Indices.
 */
const FEW_POOL_CHANNELS = 16;

/**
 * The exact ('first') MaxPool gradient for square tiling 2-D windows, without MaxPool's Indices:
 * SpaceToDepth puts each window's k² inputs on an axis of their own ([N, k², C·Ho·Wo] in row-major
 * window order), ArgMax over it picks the first maximum (select_last_index 0: PyTorch's tie-break), dy
 * goes where that one-hot mask is 1, and DepthToSpace (its exact inverse, DCR) puts it back in place.
 * Measured on the exported ResNet fixture's 2×2 stem pool ([64, 8, 28, 28], `bench/train/profile.js
 * --fixture resnet --batch 64 --threads 1`, loaded machine): the two MaxPool nodes 5.4–6.4 ms +
 * ScatterElements 1.0–1.1 ms before, these five nodes 2.7–2.8 ms + the forward MaxPool 0.14 ms
 * after (bench/README.md); a Transpose regrouping took 2.7 ms per 6-D Transpose, and a trailing window
 * axis made the broadcasting Equal/Where run per 4-element span (2.1 and 6.8 ms). Needs static
 * channel and pooled sizes (else undefined: the Indices form runs).
 */
function firstMaximumGradient(graph: Graph, x: Value, y: Value, dy: Value, [kh, kw]: [number, number], full: number[]): Value | undefined {
  const [c, ho, wo] = [x.shape![1], y.shape![2], y.shape![3]];
  if (kh !== kw || typeof c !== 'number' || typeof ho !== 'number' || typeof wo !== 'number') return undefined;
  const covered = [ho * kh, wo * kw];
  const taps = kh * kw;
  const shape = (dims: number[]) => graph.int64s(dims, 'shape');
  const depth = graph.op1('SpaceToDepth', [cropToCovered(graph, x, covered, full)], { blocksize: kh }); // [N, k²·C, Ho, Wo]
  const windows = graph.op1('Reshape', [depth, shape([0, taps, c * ho * wo])]);
  const first = graph.op1('ArgMax', [windows], { axis: 1, keepdims: 1, select_last_index: 0 }); // [N, 1, C·Ho·Wo]
  const positions = graph.constant(new Tensor(BigInt64Array.from({ length: taps }, (_, i) => BigInt(i)), [taps, 1], 'int64'), 'window_positions');
  const mask = graph.op1('Equal', [first, positions]); // [N, k², C·Ho·Wo]
  const spread = graph.op1('Where', [mask, graph.op1('Reshape', [dy, shape([0, 1, c * ho * wo])]), graph.scalar(0, dy.dtype)]);
  const placed = graph.op1('DepthToSpace', [graph.op1('Reshape', [spread, shape([0, taps * c, ho, wo])])], { blocksize: kh, mode: 'DCR' });
  return padToInput(graph, placed, covered, full);
}

ops.push({
  type: 'AveragePool',
  infer: poolInfer('AveragePool'),
  /*
   * Spreads each output's gradient evenly over its window (1-D, 2-D or 3-D): a depthwise ConvTranspose
   * with a kernel of ones, after dividing by each window's element count (which excludes padding unless
   * count_include_pad, as ONNX and Keras define it).
   */
  gradient: ({ graph, node, inputs: [x], gradOutputs: [dy] }) => {
    const sa = spatialAttrs(node.attrs, intsAttr(node.attrs, 'kernel_shape', []), x!.shape?.slice(2));
    // dilations exist for AveragePool from opset 19 only; the window counts below assume none.
    if (sa.dilations.some((d) => d !== 1)) throw new KilnError('NO_GRADIENT', 'AveragePool gradient does not support dilations');
    const n = sa.kernel.length;
    const c = x!.shape![1] as number;
    const input = x!.shape!.slice(2) as number[];
    const out = dy!.shape!.slice(2) as number[];
    const includePad = intAttr(node.attrs, 'count_include_pad', 0) === 1;
    // A window's element count is the product of its extent along each axis.
    const extents = out.map((o, a) =>
      Array.from({ length: o }, (_, i) => {
        const begin = i * sa.strides[a]! - sa.pads[a]!;
        const end = begin + sa.kernel[a]!;
        return includePad ? Math.min(end, input[a]! + sa.pads[a + n]!) - begin : Math.min(end, input[a]!) - Math.max(begin, 0);
      }),
    );
    const counts = new Float32Array(out.reduce((a, b) => a * b, 1));
    counts.forEach((_, flat) => {
      let size = 1;
      for (let a = n - 1, rest = flat; a >= 0; a--) {
        size *= extents[a]![rest % out[a]!]!;
        rest = Math.floor(rest / out[a]!);
      }
      counts[flat] = 1 / size;
    });
    const inv = graph.constant(new Tensor(counts, [1, 1, ...out], 'float32'), 'inv_count');
    const ones = graph.constant(new Tensor(new Float32Array(c * sa.kernel.reduce((a, b) => a * b, 1)).fill(1), [c, 1, ...sa.kernel], 'float32'), 'ones');
    const produced = out.map((o, a) => sa.strides[a]! * (o - 1) + sa.kernel[a]! - sa.pads[a]! - sa.pads[a + n]!);
    /*
     * Positions the windows never read are restored by output_padding; with ceil_mode the last window
     * can reach past the padded input, and those positions are cut off by padding the end further.
     */
    const outputPadding = input.map((size, a) => Math.max(0, size - produced[a]!));
    const pads = [...sa.pads];
    input.forEach((size, a) => (pads[a + n]! += Math.max(0, produced[a]! - size)));
    const kernelShape = [c, 1, ...sa.kernel];
    return [transposedConvolution(graph, graph.op1('Mul', [dy!, inv]), ones, kernelShape, { ...sa, pads, group: c, outputPadding })];
  },
});

ops.push({
  type: 'GlobalAveragePool',
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'GlobalAveragePool');
    return [{ dtype: x.dtype, shape: x.shape ? [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] : null }];
  },
  // Every position gets an equal share: broadcast-multiply by a constant 1/(H·W) plane.
  gradient: ({ graph, inputs: [x], gradOutputs: [dy] }) => {
    const spatial = x!.shape!.slice(2) as number[];
    const area = spatial.reduce((a, b) => a * b, 1);
    const plane = graph.constant(new Tensor(new Float32Array(area).fill(1 / area), [1, 1, ...spatial], 'float32'), 'inv_area');
    return [graph.op1('Mul', [dy!, plane])];
  },
});

ops.push({
  type: 'GlobalMaxPool',
  infer: (inputs) => {
    const x = requireInput(inputs, 0, 'GlobalMaxPool');
    return [{ dtype: x.dtype, shape: x.shape ? [x.shape[0]!, x.shape[1]!, ...x.shape.slice(2).map(() => 1)] : null }];
  },
  // The gradient goes to the positions equal to their channel's maximum (all of them on exact ties).
  gradient: ({ graph, inputs: [x], outputs: [y], gradOutputs: [dy] }) => {
    const mask = graph.op1('Cast', [graph.op1('Equal', [x!, y!])], { to: onnxTypeCode(x!.dtype) });
    return [graph.op1('Mul', [dy!, mask])];
  },
});
