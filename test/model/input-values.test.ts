/**
 * What a model's inputs must hold beyond type and shape (src/model/input-values.ts): token ids within
 * the embedding table they index, and the same size wherever two inputs share a named dimension —
 * refused by position and name in the library (OnnxModel, GraphModel) and with a 400 by the server,
 * where one bad request in a dynamic batch used to fail every request batched with it (a 500).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { decodeModel, encodeModel } from '../../src/graph/proto.js';
import { idTables } from '../../src/model/input-values.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { quantize } from '../../src/optimize/quantize/quantize.js';
import { Random } from '../../src/random.js';
import { Tensor } from '../../src/tensor.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { http, startServer, tmpDir, writeConfig, writeVersion } from '../serve/helpers.js';
import { assertRejectsKiln } from './helpers.js';

/**
 * input_ids [N, sequence] → Embedding (6 rows, or `rows`) and token_type_ids [N, sequence] → Cast → Embedding
 * (2 rows), summed, masked by attention_mask [N, sequence], mean over the sequence → Gemm → logits [N, 3].
 */
function textModel(rows = 6): Uint8Array {
  const rng = new Random(3);
  const w = (shape: number[]) => new Tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)), shape, 'float32');
  const g = new Graph('text');
  const ids = g.input('input_ids', 'int64', ['N', 'sequence']);
  const types = g.input('token_type_ids', 'int64', ['N', 'sequence']);
  const mask = g.input('attention_mask', 'int64', ['N', 'sequence']);
  const words = g.op1('Gather', [g.initializer('words.weight', w([rows, 4])), ids], { axis: 0 }, 'words');
  const kinds = g.op1('Gather', [g.initializer('kinds.weight', w([2, 4])), g.op1('Cast', [types], { to: 6 })], { axis: 0 }, 'kinds');
  const masked = g.op1('Mul', [g.op1('Add', [words, kinds]), g.op1('Unsqueeze', [g.op1('Cast', [mask], { to: 1 }), g.constant(new Tensor(BigInt64Array.of(2n), [1], 'int64'))])]);
  const pooled = g.op1('ReduceMean', [masked], { axes: [1], keepdims: 0 });
  g.output(g.op1('Gemm', [pooled, g.initializer('fc.weight', w([3, 4]))], { transB: 1 }, 'fc'), 'logits');
  return encodeModel(modelToProto(g));
}

const i64 = (rows: number[][]) => new Tensor(BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0]!.length], 'int64');
const good = { input_ids: i64([[1, 2, 5], [0, 3, 4]]), token_type_ids: i64([[0, 0, 1], [0, 1, 1]]), attention_mask: i64([[1, 1, 1], [1, 1, 0]]) };

describe('token ids and shared dimensions', () => {
  it('finds the table each input of ids indexes, through a Cast', () => {
    const tables = idTables(decodeModel(textModel()));
    assert.deepEqual(Object.fromEntries(tables), { input_ids: { rows: 6, table: 'words.weight', node: 'node/words' }, token_type_ids: { rows: 2, table: 'kinds.weight', node: 'node/kinds' } });
  });

  it('an OnnxModel and a GraphModel refuse an id past the table or negative, and inputs that disagree on a shared dimension, by position and name', async () => {
    const bytes = textModel();
    const file = new OnnxModel(bytes, decodeModel(bytes));
    assert.equal((await file.predict(good)).shape[0], 2);
    const past = { ...good, input_ids: i64([[1, 2, 5], [0, 6, 4]]) };
    const negative = { ...good, token_type_ids: i64([[0, 0, 1], [-1, 1, 1]]) };
    const short = { ...good, attention_mask: i64([[1, 1], [1, 1]]) };
    await assertRejectsKiln(() => file.predict(past), 'INVALID_DATA', "x.input_ids[1, 1] is 6: it indexes the 6 rows of 'words.weight' (Gather 'node/words'), so ids must be in [0, 5]");
    await assertRejectsKiln(() => file.predict(negative), 'INVALID_DATA', 'x.token_type_ids[1, 0] is -1', 'so ids must be in [0, 1]', "nn.Embedding refuses it");
    await assertRejectsKiln(() => file.run(past), 'INVALID_DATA', "input 'input_ids'[1, 1] is 6");
    await assertRejectsKiln(() => file.predict(short), 'INVALID_SHAPE', "input 'attention_mask' has shape [2, 2]: its dimension 'sequence' (axis 1) is 2, and 3 in input 'input_ids'");
    await assertRejectsKiln(() => file.run(short), 'INVALID_SHAPE', "input 'attention_mask' has shape [2, 2]");
    const model = await GraphModel.fromProto(decodeModel(bytes), 'text.onnx', { dimensions: { sequence: 3 } });
    model.compile({ optimizer: 'sgd', loss: 'sparseCategoricalCrossentropy' });
    const y = new Tensor(Int32Array.of(0, 2), [2], 'int32');
    await assertRejectsKiln(() => model.fit(past, y, { epochs: 1, verbose: 0 }), 'INVALID_DATA', "x.input_ids[1, 1] is 6: it indexes the 6 rows of 'words.weight'");
    await assertRejectsKiln(() => model.predict(negative), 'INVALID_DATA', 'x.token_type_ids[1, 0] is -1');
    await model.fit(good, y, { epochs: 1, verbose: 0 });
  });

  it('a quantized model, whose table is stored in 8 bits (Cast and Mul before the Gather), refuses the same ids; keys the model has no input for are neither fed nor counted', async () => {
    const q = await quantize(textModel(160), { mode: 'dynamic' });
    assert.ok(decodeModel(q.bytes).graph!.initializer!.some((t) => t.name === 'words.weight/int8'), 'the table is stored in 8 bits');
    await assertRejectsKiln(() => q.predict({ ...good, input_ids: i64([[1, 2, 5], [0, 160, 4]]) }), 'INVALID_DATA', "x.input_ids[1, 1] is 160: it indexes the 160 rows of 'words.weight/int8'");
    const extra = await q.predict({ ...good, labels: new Tensor(Int32Array.of(1), [1], 'int32') }, { batchSize: 1 });
    assert.deepEqual(extra.shape, [2, 3]);
  });

  it('the server answers 400 for the one request with a bad id, and 200 for the requests batched with it', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'text', 1, textModel());
    await writeConfig(dir, 'text', { maxBatchSize: 16, maxQueueDelayMs: 2000 });
    const server = await startServer({ modelRepository: dir });
    try {
      const body = (ids: number[], mask = [1, 1, 1]) => ({
        inputs: [
          { name: 'input_ids', shape: [1, ids.length], datatype: 'INT64', data: ids },
          { name: 'token_type_ids', shape: [1, ids.length], datatype: 'INT64', data: ids.map(() => 0) },
          { name: 'attention_mask', shape: [1, mask.length], datatype: 'INT64', data: mask },
        ],
      });
      const bodies = Array.from({ length: 8 }, (_, i) => body(i === 3 ? [1, 9, 2] : i === 5 ? [1, 2, 3] : [i % 6, 1, 2], i === 5 ? [1, 1] : [1, 1, 1]));
      const replies = await Promise.all(bodies.map((b) => http(server.url, 'POST', '/v2/models/text/infer', b)));
      assert.deepEqual(replies.map((r) => r.status), [200, 200, 200, 400, 200, 400, 200, 200]);
      assert.match(String((replies[3]!.json as { error: string }).error), /input 'input_ids'\[0, 1\] is 9: it indexes the 6 rows of 'words.weight'/);
      assert.match(String((replies[5]!.json as { error: string }).error), /input 'attention_mask' has shape \[1, 2\]: its dimension 'sequence'/);
    } finally {
      await server.close();
      await cleanup();
    }
  });
});
