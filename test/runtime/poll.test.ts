import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';

/* Runtime.poll settles finished runs without the event loop's help (a flooded server relies on it). */

test('poll() settles a finished run synchronously, before the event loop delivers its reply', async () => {
  const g = new Graph('double');
  const x = g.input('x', 'float32', ['N', 3]);
  g.output(g.op1('Mul', [x, g.scalar(2)]), 'y');
  const runtime = new Runtime();
  try {
    const session = await runtime.load(encodeModel(modelToProto(g)));
    const run = runtime.run(session, { x: new Tensor(new Float32Array([1, 2, 3]), [1, 3], 'float32') });
    assert.equal(runtime.inFlight, 1);
    // No await in this loop: only poll() can settle the run (bounded: 30 s of waiting at most).
    const sleeper = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; i < 30_000 && runtime.inFlight > 0; i++) {
      runtime.poll();
      if (runtime.inFlight > 0) Atomics.wait(sleeper, 0, 0, 1);
    }
    assert.equal(runtime.inFlight, 0, 'poll() did not settle the run');
    assert.deepEqual(Array.from((await run).y!.data as Float32Array), [2, 4, 6]);
  } finally {
    await runtime.close();
  }
});
