import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { client } from '../../../src/serve/client.js';
import { ServeError } from '../../../src/serve/errors.js';
import type { ServerHandle } from '../../../src/serve/server.js';
import { Tensor } from '../../../src/tensor.js';
import { assertClose, denseModel, randomInput, spawnServe, startServer, typedModel, TYPED_INPUTS } from '../helpers.js';

describe('kiln.client over gRPC (grpc://host:port)', () => {
  let server: ServerHandle;
  let typed: ServerHandle;
  const model = denseModel(4);

  before(async () => {
    server = await startServer({ model, name: 'dense', grpcPort: 0, authToken: 'tok' });
    typed = await startServer({ model: typedModel(), name: 'typed', grpcPort: 0 });
  });
  after(async () => {
    await server.close();
    await typed.close();
  });

  test('health, metadata and readiness equal the HTTP client answers', async () => {
    const viaGrpc = client(`grpc://${server.grpcAddress}`, { token: 'tok' });
    const viaHttp = client(server.url, { token: 'tok' });
    try {
      assert.equal(await viaGrpc.live(), true);
      assert.equal(await viaGrpc.ready(), true);
      assert.deepEqual(await viaGrpc.serverMetadata(), await viaHttp.serverMetadata());
      assert.deepEqual(await viaGrpc.modelMetadata('dense'), await viaHttp.modelMetadata('dense'));
      assert.equal(await viaGrpc.modelReady('dense', { version: 1 }), true);
      assert.equal(await viaGrpc.modelReady('dense', { version: 2 }), false);
    } finally {
      viaGrpc.close();
    }
  });

  test('infer (raw and typed contents) and predict equal model.predict and the HTTP client', async () => {
    const kiln = client(`grpc://${server.grpcAddress}`, { token: 'tok' });
    try {
      const x = randomInput(6, [3], 41);
      const expected = (await model.predict(x)).data as Float32Array;
      const raw = await kiln.infer('dense', { input: x }, { version: 1 });
      assert.deepEqual(raw.output!.shape, [6, 2]);
      assertClose(raw.output!.data as Float32Array, expected);
      assertClose((await kiln.infer('dense', { input: x }, { binary: false })).output!.data as Float32Array, expected);
      assertClose((await kiln.predict('dense', x)).data as Float32Array, expected);
      const viaHttp = await client(server.url, { token: 'tok' }).infer('dense', { input: x });
      assert.deepEqual(Array.from(raw.output!.data as Float32Array), Array.from(viaHttp.output!.data as Float32Array));
    } finally {
      kiln.close();
    }
  });

  test('every element type round-trips through infer, raw and typed', async () => {
    const kiln = client(`grpc://${typed.grpcAddress}`);
    try {
      const inputs: Record<string, Tensor> = {
        f32: new Tensor(new Float32Array([1.5, -2, 3, 4]), [2, 2], 'float32'),
        f64: new Tensor(new Float64Array([0.1, -1e300, 2, 5e-324]), [2, 2], 'float64'),
        i8: new Tensor(new Int8Array([-128, 127, 0, 1]), [2, 2], 'int8'),
        i32: new Tensor(new Int32Array([-2147483648, 2147483647, 0, 1]), [2, 2], 'int32'),
        i64: new Tensor(new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, 1n]), [2, 2], 'int64'),
        u8: new Tensor(new Uint8Array([0, 255, 7, 1]), [2, 2], 'uint8'),
        b: new Tensor(new Uint8Array([1, 0, 0, 1]), [2, 2], 'bool'),
      };
      for (const binary of [true, false]) {
        const out = await kiln.infer('typed', inputs, { binary });
        for (const [name, dtype] of TYPED_INPUTS) {
          const t = out[`out_${name}`]!;
          assert.equal(t.dtype, dtype);
          assert.deepEqual(t.shape, [2, 2]);
          assert.deepEqual(Array.from(t.data as ArrayLike<unknown>), Array.from(inputs[name]!.data as ArrayLike<unknown>), `${name} (binary ${binary})`);
        }
      }
    } finally {
      kiln.close();
    }
  });

  test('failures are ServeErrors with the HTTP status of the gRPC code and the server message; HTTP-only calls say so', async () => {
    const kiln = client(`grpc://${server.grpcAddress}`, { token: 'tok' });
    const anonymous = client(`grpc://${server.grpcAddress}`);
    try {
      const x = randomInput(1, [3]);
      await assert.rejects(kiln.infer('nope', { input: x }), (e: ServeError) => e instanceof ServeError && e.status === 404 && /gRPC NOT_FOUND: unknown model 'nope'/.test(e.message));
      await assert.rejects(kiln.infer('dense', { wrong: x }), (e: ServeError) => e.status === 400 && /unexpected input 'wrong'/.test(e.message));
      await assert.rejects(anonymous.infer('dense', { input: x }), (e: ServeError) => e.status === 401 && /gRPC UNAUTHENTICATED/.test(e.message));
      assert.throws(() => kiln.repositoryIndex(), /repositoryIndex is part of the HTTP protocol only/);
      assert.throws(() => kiln.inferRaw('dense', {}), /HTTP protocol only/);
    } finally {
      kiln.close();
      anonymous.close();
    }
  });
});

test('kiln serve --grpc-port serves gRPC and logs its address', async () => {
  const { writeFile } = await import('node:fs/promises');
  const { tmpDir } = await import('../helpers.js');
  const { dir, cleanup } = await tmpDir();
  const file = `${dir}/dense.onnx`;
  await writeFile(file, denseModel(5).toOnnx());
  const cli = await spawnServe([file, '--grpc-port', '0', '--log-level', 'info']);
  try {
    const listening = cli.logs.find((l) => l.msg === 'kiln serve listening')!;
    assert.match(String(listening.grpc), /^127\.0\.0\.1:[0-9]+$/);
    const kiln = client(`grpc://${listening.grpc}`);
    const x = randomInput(2, [3], 3);
    assertClose((await kiln.infer('dense', { input: x })).output!.data as Float32Array, (await denseModel(5).predict(x)).data as Float32Array);
    kiln.close();
  } finally {
    cli.child.kill('SIGTERM');
    await cli.exit;
    await cleanup();
  }
});
