import type { Attrs, Dim } from './graph.js';
import { intsAttr } from './op-definition.js';

/**
 * The pads a Conv or pool node means, explicit. auto_pad SAME_UPPER / SAME_LOWER (what tf2onnx writes
 * for Keras' 'same') pads so that the output is ceil(in / stride): the total is
 * max(0, (ceil(in/s) - 1)·s + (k-1)·d + 1 - in), its odd unit at the end for SAME_UPPER and at the
 * beginning for SAME_LOWER; VALID pads nothing. The gradient rules emit explicit pads, so they must
 * see these, not the 'pads' attribute (absent with auto_pad). A symbolic dimension gets 0 here: its
 * output size is unknown anyway, and gradients need static shapes.
 */
export function resolvedPads(attrs: Attrs, kernel: number[], strides: number[], dilations: number[], inputSpatial: readonly Dim[] | undefined): number[] {
  const n = kernel.length;
  const autoPad = typeof attrs.auto_pad === 'string' ? attrs.auto_pad : 'NOTSET';
  if (autoPad === 'VALID') return Array(2 * n).fill(0);
  if (autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER') return intsAttr(attrs, 'pads', Array(2 * n).fill(0));
  const pads = Array(2 * n).fill(0);
  for (let i = 0; i < n; i++) {
    const size = inputSpatial?.[i];
    if (typeof size !== 'number') continue;
    const total = Math.max(0, (Math.ceil(size / strides[i]!) - 1) * strides[i]! + (kernel[i]! - 1) * dilations[i]! + 1 - size);
    const small = Math.floor(total / 2);
    pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
    pads[i + n] = total - pads[i];
  }
  return pads;
}
