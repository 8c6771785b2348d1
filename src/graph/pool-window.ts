import type { Attrs } from './graph.js';
import { intAttr, intsAttr } from './op-definition.js';

/**
 * Whether a pool's windows tile its input exactly: each window as large as its stride, undilated,
 * unpadded, with no partial window at the end (ceil_mode 0). Such windows never overlap and only the
 * rows and columns past the last whole window go unread, which MaxPool's gradient (upsampling instead
 * of scattering indices) and trimUnreadRows rely on. Defaults follow ONNX, as spatialAttrs
 * does. auto_pad SAME_* pads some windows (depending on the input size), so it never tiles here.
 */
export function isTilingPool(attrs: Attrs): boolean {
  const kernel = intsAttr(attrs, 'kernel_shape', []);
  const n = kernel.length;
  const strides = intsAttr(attrs, 'strides', Array(n).fill(1));
  const pads = intsAttr(attrs, 'pads', Array(2 * n).fill(0));
  const dilations = intsAttr(attrs, 'dilations', Array(n).fill(1));
  const autoPad = typeof attrs.auto_pad === 'string' ? attrs.auto_pad : 'NOTSET';
  return (
    (autoPad === 'NOTSET' || autoPad === 'VALID') &&
    intAttr(attrs, 'ceil_mode', 0) === 0 &&
    kernel.every((k, i) => k === strides[i] && dilations[i] === 1) &&
    pads.every((p) => p === 0)
  );
}
