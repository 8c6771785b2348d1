import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.js';
import { saveNpy } from '../../src/data/npy.js';
import { client } from '../../src/serve/client.js';
import { ServeError } from '../../src/serve/errors.js';
import { serve, type ServerHandle } from '../../src/serve/server.js';
import { assertClose, denseModel, randomInput, tmpDir, twoInputModel } from './helpers.js';
import { Tensor } from '../../src/tensor.js';

describe('kiln.client and kiln predict', () => {
  let server: ServerHandle;
  let pair: ServerHandle;
  let dir: string;
  let cleanup: () => Promise<void>;
  const model = denseModel(8);

  before(async () => {
    ({ dir, cleanup } = await tmpDir());
    // A model object served straight from memory, under a name.
    server = await serve({ model, name: 'dense', host: '127.0.0.1', port: 0, logLevel: 'silent' });
    pair = await serve({ model: twoInputModel(), name: 'pair', host: '127.0.0.1', port: 0, logLevel: 'silent', authToken: 'tok' });
  });
  after(async () => {
    await server.close();
    await pair.close();
    await cleanup();
  });

  test('health, metadata and readiness', async () => {
    const kiln = client(server.url);
    assert.equal(await kiln.live(), true);
    assert.equal(await kiln.ready(), true);
    assert.equal((await kiln.serverMetadata()).name, 'kiln');
    assert.deepEqual((await kiln.modelMetadata('dense')).inputs, [{ name: 'input', datatype: 'FP32', shape: [-1, 3] }]);
    assert.equal(await kiln.modelReady('dense', { version: 1 }), true);
    assert.equal(await kiln.modelReady('dense', { version: 2 }), false);
    assert.deepEqual(await kiln.repositoryIndex(), [{ name: 'dense', version: '1', state: 'READY', reason: '' }]);
  });

  test('predict and infer equal model.predict; errors carry the HTTP status and message', async () => {
    const kiln = client(server.url);
    const x = randomInput(5, [3], 31);
    const expected = await model.predict(x);
    assertClose((await kiln.predict('dense', x)).data as Float32Array, expected.data);
    const outputs = await kiln.infer('dense', { input: x }, { version: 1 });
    assert.deepEqual(outputs.output!.shape, [5, 2]);
    assertClose(outputs.output!.data as Float32Array, expected.data);
    await assert.rejects(kiln.predict('nope', x), (err: unknown) => err instanceof ServeError && err.status === 404 && /unknown model 'nope'/.test(err.message));
    await assert.rejects(kiln.infer('dense', { input: randomInput(1, [4]) }), (err: unknown) => err instanceof ServeError && err.status === 400);
    await assert.rejects(client('http://127.0.0.1:1').live(), /failed/);
  });

  test('multi-input models through infer, with a token', async () => {
    const kiln = client(pair.url, { token: 'tok' });
    const x = new Tensor(Float32Array.of(1, 2, 3), [1, 3], 'float32');
    const out = await kiln.infer('pair', { x, y: x }, { outputs: ['sum'] });
    assert.deepEqual(Object.keys(out), ['sum']);
    assert.deepEqual(Array.from(out.sum!.data as Float32Array), [2, 4, 6]);
    await assert.rejects(client(pair.url).infer('pair', { x, y: x }), (err: unknown) => err instanceof ServeError && err.status === 401);
  });

  test('kiln predict reads .npy and JSON inputs and prints the v2 response', async () => {
    const x = randomInput(2, [3], 32);
    const expected = await model.predict(x);
    const npyFile = path.join(dir, 'x.npy');
    await saveNpy(npyFile, x);
    const run = async (args: string[]) => {
      const lines: string[] = [];
      const errors: string[] = [];
      const code = await main(['predict', '--url', server.url, '--model', 'dense', ...args], (l) => lines.push(l), (l) => errors.push(l));
      return { code, out: lines.join('\n'), err: errors.join('\n') };
    };
    const viaNpy = await run(['--input', npyFile]);
    assert.equal(viaNpy.code, 0, viaNpy.err);
    const response = JSON.parse(viaNpy.out);
    assert.equal(response.model_name, 'dense');
    assertClose(response.outputs[0].data, expected.data);

    const nested = path.join(dir, 'x.json');
    await writeFile(nested, JSON.stringify(x.toArray()));
    const viaJson = await run(['--input', nested, '--model-version', '1']);
    assert.equal(viaJson.code, 0, viaJson.err);
    assertClose(JSON.parse(viaJson.out).outputs[0].data, expected.data);

    const v2Body = path.join(dir, 'body.json');
    await writeFile(v2Body, JSON.stringify({ inputs: [{ name: 'input', shape: [2, 3], datatype: 'FP32', data: Array.from(x.data) }] }));
    const viaBody = await run(['--input', v2Body, '--output', 'output']);
    assert.equal(viaBody.code, 0, viaBody.err);
    assertClose(JSON.parse(viaBody.out).outputs[0].data, expected.data);

    const missing = await run(['--input', path.join(dir, 'nope.json')]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /nope\.json/);
    const unknown = await main(['predict', '--url', server.url, '--model', 'ghost', '--input', v2Body], () => undefined, () => undefined).catch((e: Error) => e);
    assert.equal(unknown, 1);
  });
});
