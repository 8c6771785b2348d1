import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { credentials, status } from '@grpc/grpc-js';
import { request } from 'node:https';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { client } from '../../src/serve/client.js';
import type { ServerHandle } from '../../src/serve/server.js';
import { clientCertificate, makeCa, serverCertificate, type Issued } from './certificates.js';
import { protoClient } from './grpc/proto-client.js';
import { assertClose, CLI, denseBody, denseModel, randomInput, spawnServe, startServer, tmpDir, waitFor } from './helpers.js';

/*
 * TLS for HTTP and gRPC, with certificates made in the test (certificates.ts): a client that trusts
 * the server's CA gets answers, one that does not is refused; with a client CA (mutual TLS), a client
 * without a certificate, or with one from another CA, is refused.
 */

const model = denseModel(6);
const x = randomInput(2, [3], 61);

/** POST /v2/models/dense/infer over HTTPS with the given TLS settings: the status, or the error code. */
function httpsInfer(url: string, tls: { ca?: string; cert?: string; key?: string }): Promise<number | string> {
  const body = JSON.stringify(denseBody(x));
  return new Promise((resolve) => {
    const req = request(`${url}/v2/models/dense/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, ...tls, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end(body);
  });
}

const grpcInfer = { model_name: 'dense', inputs: [{ name: 'input', datatype: 'FP32', shape: [2, 3], contents: { fp32_contents: Array.from(x.data) } }] };

/** ModelInfer over gRPC with the given credentials: 0 or the status code. */
async function grpcCode(address: string, creds: ReturnType<typeof credentials.createSsl>): Promise<number> {
  const c = protoClient(address, creds);
  try {
    await c.call('ModelInfer', grpcInfer);
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  } finally {
    c.close();
  }
}

describe('TLS', () => {
  let ca: Issued;
  let otherCa: Issued;
  let server: ServerHandle;
  let mutual: ServerHandle;
  let client1: Issued;
  let stranger: Issued;

  before(async () => {
    ca = makeCa();
    otherCa = makeCa('another CA');
    const cert = serverCertificate(ca);
    client1 = clientCertificate(ca);
    stranger = clientCertificate(otherCa);
    // PEM given as bytes here; as files below and from the CLI.
    const pem = (s: string) => Buffer.from(s);
    server = await startServer({ model, name: 'dense', grpcPort: 0, tls: { cert: pem(cert.cert), key: pem(cert.key) } });
    mutual = await startServer({ model, name: 'dense', grpcPort: 0, tls: { cert: pem(cert.cert), key: pem(cert.key), clientCa: pem(ca.cert) } });
  });
  after(async () => {
    await server.close();
    await mutual.close();
  });

  test('HTTPS: the URL says https; a client trusting the CA is answered, one that does not is refused', async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:[0-9]+$/);
    assert.equal(await httpsInfer(server.url, { ca: ca.cert }), 200);
    assert.equal(await httpsInfer(server.url, {}), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    assert.equal(await httpsInfer(server.url, { ca: otherCa.cert }), 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    const expected = (await model.predict(x)).data as Float32Array;
    assertClose((await client(server.url, { tls: { ca: ca.cert } }).infer('dense', { input: x })).output!.data as Float32Array, expected);
    await assert.rejects(client(server.url).live(), /failed/);
  });

  test('gRPC over TLS: a client trusting the CA is answered, one that does not, or speaks plain gRPC, is not', async () => {
    assert.equal(await grpcCode(server.grpcAddress!, credentials.createSsl(Buffer.from(ca.cert))), 0);
    assert.equal(await grpcCode(server.grpcAddress!, credentials.createSsl(Buffer.from(otherCa.cert))), status.UNAVAILABLE);
    assert.equal(await grpcCode(server.grpcAddress!, credentials.createSsl()), status.UNAVAILABLE);
    assert.equal(await grpcCode(server.grpcAddress!, credentials.createInsecure()), status.UNAVAILABLE);
    const kiln = client(`grpcs://${server.grpcAddress}`, { tls: { ca: ca.cert } });
    assertClose((await kiln.infer('dense', { input: x })).output!.data as Float32Array, (await model.predict(x)).data as Float32Array);
    kiln.close();
  });

  test('mutual TLS over HTTPS: only a client with a certificate from the client CA is answered', async () => {
    assert.equal(await httpsInfer(mutual.url, { ca: ca.cert, cert: client1.cert, key: client1.key }), 200);
    assert.notEqual(await httpsInfer(mutual.url, { ca: ca.cert }), 200);
    assert.notEqual(await httpsInfer(mutual.url, { ca: ca.cert, cert: stranger.cert, key: stranger.key }), 200);
    const kiln = client(mutual.url, { tls: { ca: ca.cert, cert: client1.cert, key: client1.key } });
    assert.equal((await kiln.infer('dense', { input: x })).output!.shape.join(), '2,2');
    kiln.close();
    await assert.rejects(client(mutual.url, { tls: { ca: ca.cert } }).live(), /failed/);
    assert.throws(() => client(mutual.url, { tls: { ca: ca.cert, cert: client1.cert } }), /needs its key/);
  });

  test('mutual TLS over gRPC: only a client with a certificate from the client CA is answered', async () => {
    const caBytes = Buffer.from(ca.cert);
    assert.equal(await grpcCode(mutual.grpcAddress!, credentials.createSsl(caBytes, Buffer.from(client1.key), Buffer.from(client1.cert))), 0);
    assert.equal(await grpcCode(mutual.grpcAddress!, credentials.createSsl(caBytes)), status.UNAVAILABLE);
    assert.equal(await grpcCode(mutual.grpcAddress!, credentials.createSsl(caBytes, Buffer.from(stranger.key), Buffer.from(stranger.cert))), status.UNAVAILABLE);
    const kiln = client(`grpcs://${mutual.grpcAddress}`, { tls: { ca: ca.cert, cert: client1.cert, key: client1.key } });
    assert.equal(await kiln.ready(), true);
    kiln.close();
  });
});

test('shutdown over HTTPS answers a request in flight instead of cutting its connection', async () => {
  const ca = makeCa();
  const cert = serverCertificate(ca);
  // The request waits 400 ms in the queue for company; close() starts meanwhile.
  const server = await startServer({ model, name: 'dense', tls: { cert: Buffer.from(cert.cert), key: Buffer.from(cert.key) }, config: { maxBatchSize: 8, maxQueueDelayMs: 400 } });
  const pending = httpsInfer(server.url, { ca: ca.cert });
  await waitFor(() => server.registry.resolve('dense').batcher!.queued === 1, 10_000, 'the request to be queued');
  await server.close();
  assert.equal(await pending, 200);
});

describe('TLS start-up errors', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const ca = makeCa();
  const cert = serverCertificate(ca);
  const other = serverCertificate(ca, 'another server');
  const files: Record<string, string> = {};

  before(async () => {
    ({ dir, cleanup } = await tmpDir('kiln-tls-'));
    const write = async (name: string, text: string) => {
      files[name] = path.join(dir, name);
      await writeFile(files[name]!, text);
    };
    await write('cert.pem', cert.cert);
    await write('key.pem', cert.key);
    await write('other-key.pem', other.key);
    await write('ca.pem', ca.cert);
    await write('junk.pem', 'not a certificate\n');
  });
  after(() => cleanup());

  test('a key that does not match its certificate, a missing file, or files that are not PEM: a clear error at start-up', async () => {
    const cases: [object, RegExp][] = [
      [{ cert: files['cert.pem'], key: files['other-key.pem'] }, /the TLS key \(--tls-key\) '.*other-key\.pem' does not match the TLS certificate \(--tls-cert\) '.*cert\.pem' \(subject CN=kiln test server\)/],
      [{ cert: files['cert.pem'], key: path.join(dir, 'missing.pem') }, /the TLS key \(--tls-key\) '.*missing\.pem' cannot be read \(ENOENT\)/],
      [{ cert: files['junk.pem'], key: files['key.pem'] }, /the TLS certificate \(--tls-cert\) '.*junk\.pem' holds no PEM certificate/],
      [{ cert: files['cert.pem'], key: files['junk.pem'] }, /the TLS key \(--tls-key\) '.*junk\.pem' is not a readable unencrypted PEM private key/],
      [{ cert: files['cert.pem'], key: files['key.pem'], clientCa: files['junk.pem'] }, /the client CA \(--tls-client-ca\) '.*junk\.pem' holds no PEM certificate/],
      [{ cert: files['cert.pem'] }, /TLS needs both a certificate and its key/],
    ];
    for (const [tls, message] of cases) {
      await assert.rejects(startServer({ model, name: 'dense', grpcPort: 0, tls: tls as never }), (err: Error) => {
        assert.match(err.message, message);
        return true;
      });
    }
  });

  test('kiln serve --tls-cert/--tls-key/--tls-client-ca: files from the command line; half a pair is refused', async () => {
    const modelFile = path.join(dir, 'dense.onnx');
    await writeFile(modelFile, model.toOnnx());
    const run = (...args: string[]) => spawnSync(process.execPath, [CLI, 'serve', modelFile, '--port', '0', ...args], { encoding: 'utf8', timeout: 30_000 });
    const half = run('--tls-cert', files['cert.pem']!);
    assert.notEqual(half.status, 0);
    assert.match(half.stderr, /TLS needs --tls-cert and --tls-key together/);
    const mismatch = run('--tls-cert', files['cert.pem']!, '--tls-key', files['other-key.pem']!);
    assert.notEqual(mismatch.status, 0);
    assert.match(mismatch.stderr, /does not match the TLS certificate/);
    const cli = await spawnServe([modelFile, '--name', 'dense', '--grpc-port', '0', '--tls-cert', files['cert.pem']!, '--tls-key', files['key.pem']!, '--tls-client-ca', files['ca.pem']!]);
    try {
      assert.match(cli.url, /^https:/);
      const listening = cli.logs.find((l) => l.msg === 'kiln serve listening')!;
      assert.deepEqual(listening.tls, { subject: 'CN=kiln test server', validTo: new X509Certificate(cert.cert).validTo, clientCertificates: true });
      const me = clientCertificate(ca);
      assert.equal(await httpsInfer(cli.url, { ca: ca.cert, cert: me.cert, key: me.key }), 200);
      assert.notEqual(await httpsInfer(cli.url, { ca: ca.cert }), 200);
      const kiln = client(`grpcs://${listening.grpc}`, { tls: { ca: ca.cert, cert: me.cert, key: me.key } });
      assert.equal(await kiln.live(), true);
      kiln.close();
    } finally {
      cli.child.kill('SIGTERM');
      await cli.exit;
    }
  });
});
