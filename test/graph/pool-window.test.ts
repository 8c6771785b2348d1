import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isTilingPool } from '../../src/graph/pool-window.js';

describe('isTilingPool', () => {
  it('windows as large as their strides, unpadded, undilated, floor mode: tiling', () => {
    assert.equal(isTilingPool({ kernel_shape: [2, 2], strides: [2, 2] }), true);
    assert.equal(isTilingPool({ kernel_shape: [3, 2], strides: [3, 2], pads: [0, 0, 0, 0], dilations: [1, 1], ceil_mode: 0 }), true);
    // ONNX's default stride is 1, so a 1×1 window with no strides tiles too.
    assert.equal(isTilingPool({ kernel_shape: [1, 1] }), true);
  });

  it('overlapping or gapped windows, padding, dilation or ceil mode: not tiling', () => {
    assert.equal(isTilingPool({ kernel_shape: [2, 2] }), false, 'default strides of 1 overlap');
    assert.equal(isTilingPool({ kernel_shape: [3, 3], strides: [2, 2] }), false);
    assert.equal(isTilingPool({ kernel_shape: [2, 2], strides: [3, 3] }), false);
    assert.equal(isTilingPool({ kernel_shape: [2, 2], strides: [2, 2], pads: [0, 0, 1, 0] }), false);
    assert.equal(isTilingPool({ kernel_shape: [2, 2], strides: [2, 2], dilations: [1, 2] }), false);
    assert.equal(isTilingPool({ kernel_shape: [2, 2], strides: [2, 2], ceil_mode: 1 }), false);
  });
});
