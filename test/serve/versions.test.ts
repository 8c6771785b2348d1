import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { assertClose, denseBody, denseModel, http, metricValue, randomInput, startServer, tmpDir, waitFor, writeConfig, writeVersion } from './helpers.js';

async function versionsOf(url: string, model: string): Promise<{ version: string; state: string; status: { error_code: string; error_message: string } }[]> {
  return (await http(url, 'GET', `/v1/models/${model}`)).json.model_version_status;
}

describe('versions, policies and hot reload', () => {
  test('version policies: latest 1 by default, latest N, specific versions, all', async () => {
    const { dir, cleanup } = await tmpDir();
    for (const model of ['latest', 'latest2', 'specific', 'all']) for (const v of [1, 2, 3]) await writeVersion(dir, model, v, denseModel(v));
    await writeConfig(dir, 'latest2', { versionPolicy: { latest: 2 } });
    await writeConfig(dir, 'specific', { versionPolicy: { specific: [1, 3] } });
    await writeConfig(dir, 'all', { versionPolicy: 'all' });
    const server = await startServer({ modelRepository: dir });
    try {
      const loaded = async (model: string) => (await versionsOf(server.url, model)).filter((s) => s.state === 'AVAILABLE').map((s) => s.version);
      assert.deepEqual(await loaded('latest'), ['3']);
      assert.deepEqual(await loaded('latest2'), ['3', '2']);
      assert.deepEqual(await loaded('specific'), ['3', '1']);
      assert.deepEqual(await loaded('all'), ['3', '2', '1']);
      // A version on disk but outside the policy is not served.
      assert.equal((await http(server.url, 'POST', '/v2/models/latest/versions/1/infer', denseBody(randomInput(1, [3])))).status, 404);
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('a new version added while requests flow takes over with zero failed requests; the old one drains', async () => {
    const { dir, cleanup } = await tmpDir();
    const v1 = denseModel(1);
    const v2 = denseModel(2);
    await writeVersion(dir, 'm', 1, v1);
    const server = await startServer({ modelRepository: dir, pollIntervalMs: 100 });
    const x = randomInput(2, [3], 21);
    const expected: Record<string, Float32Array> = { '1': (await v1.predict(x)).data, '2': (await v2.predict(x)).data };
    const seen = new Set<string>();
    const failures: string[] = [];
    let sent = 0;
    let stop = false;
    const loop = async () => {
      while (!stop) {
        sent++;
        const r = await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x)).catch((err: Error) => ({ status: 0, text: err.message, json: undefined }));
        if (r.status !== 200) {
          failures.push(`${r.status} ${r.text}`);
          continue;
        }
        const version = r.json.model_version as string;
        seen.add(version);
        try {
          assertClose(r.json.outputs[0].data, expected[version]!);
        } catch (err) {
          failures.push(`version ${version}: ${(err as Error).message}`);
        }
      }
    };
    try {
      const loops = [loop(), loop(), loop(), loop()];
      await new Promise((r) => setTimeout(r, 300));
      await writeVersion(dir, 'm', 2, v2);
      await waitFor(() => seen.has('2'), 10_000, 'version 2 to take traffic');
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(loops);
      assert.deepEqual(failures, []);
      assert.ok(sent > 20, `only ${sent} requests were sent`);
      assert.ok(seen.has('1') && seen.has('2'));
      const status = await waitFor(async () => {
        const s = await versionsOf(server.url, 'm');
        return s.find((v) => v.version === '1')?.state === 'END' ? s : undefined;
      }, 5000, 'version 1 to unload');
      assert.deepEqual(status.map((s) => [s.version, s.state]), [['2', 'AVAILABLE'], ['1', 'END']]);
    } finally {
      stop = true;
      await server.close();
      await cleanup();
    }
  });

  test('a corrupt version is reported with its error while the previous one keeps serving; a fixed file is retried', async () => {
    const { dir, cleanup } = await tmpDir();
    const v1 = denseModel(1);
    await writeVersion(dir, 'm', 1, v1);
    const server = await startServer({ modelRepository: dir, pollIntervalMs: 100 });
    try {
      await writeVersion(dir, 'm', 2, new Uint8Array(randomBytes(2000)));
      const failed = await waitFor(async () => (await versionsOf(server.url, 'm')).find((s) => s.version === '2' && s.state === 'END'), 10_000, 'version 2 to fail');
      assert.equal(failed.status.error_code, 'UNKNOWN');
      assert.match(failed.status.error_message, /not (a valid|an) ONNX model|protobuf/i);
      const x = randomInput(1, [3]);
      const r = await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x));
      assert.equal(r.status, 200);
      assert.equal(r.json.model_version, '1');
      assertClose(r.json.outputs[0].data, (await v1.predict(x)).data);
      assert.equal((await http(server.url, 'GET', '/v2/models/m/versions/1/ready')).status, 200);
      const notReady = await http(server.url, 'POST', '/v2/models/m/versions/2/infer', denseBody(x));
      assert.equal(notReady.status, 503);
      assert.match(notReady.json.error, /version 2 is not ready: FAILED/);
      const index = await http(server.url, 'POST', '/v2/repository/index', {});
      assert.ok(index.json.some((e: { name: string; version: string; state: string; reason: string }) => e.version === '2' && e.state === 'FAILED' && e.reason.length > 0));
      // The server is still ready: the model has a version serving.
      assert.equal((await http(server.url, 'GET', '/v2/health/ready')).status, 200);

      // Replacing the file retries the load; once it works, it takes traffic.
      const v2 = denseModel(2);
      await v2.save(path.join(dir, 'm', '2', 'model.onnx'));
      await waitFor(async () => (await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x))).json?.model_version === '2', 10_000, 'fixed version 2');
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('removing a version drains it: requests in flight finish, then it is gone', async () => {
    const { dir, cleanup } = await tmpDir();
    const v1 = denseModel(1);
    const v2 = denseModel(2);
    await writeVersion(dir, 'm', 1, v1);
    await writeVersion(dir, 'm', 2, v2);
    // A lone request waits up to 400 ms for company, so it is in flight when the version goes.
    await writeConfig(dir, 'm', { versionPolicy: 'all', maxBatchSize: 8, maxQueueDelayMs: 400 });
    const server = await startServer({ modelRepository: dir, pollIntervalMs: 100 });
    try {
      const x = randomInput(1, [3], 3);
      const inFlight = http(server.url, 'POST', '/v2/models/m/versions/2/infer', denseBody(x));
      await waitFor(async () => metricValue((await http(server.url, 'GET', '/metrics')).text, 'kiln_inference_pending_requests', 'model="m",version="2"') === 1, 5000, 'the request to be queued');
      await rm(path.join(dir, 'm', '2'), { recursive: true });
      const r = await inFlight;
      assert.equal(r.status, 200, r.text);
      assertClose(r.json.outputs[0].data, (await v2.predict(x)).data);
      await waitFor(async () => (await http(server.url, 'GET', '/v2/models/m/versions/2/ready')).status === 404, 5000, 'version 2 to disappear');
      const after = await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x));
      assert.equal(after.json.model_version, '1');
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('labels point at versions; a label on a version that is not loaded is 503', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'm', 1, denseModel(1));
    await writeVersion(dir, 'm', 2, denseModel(2));
    await writeConfig(dir, 'm', { versionPolicy: { specific: [2] }, versionLabels: { stable: 2, old: 1 } });
    const server = await startServer({ modelRepository: dir });
    try {
      const body = { instances: [[1, 2, 3]] };
      assert.equal((await http(server.url, 'POST', '/v1/models/m/labels/stable:predict', body)).status, 200);
      const old = await http(server.url, 'POST', '/v1/models/m/labels/old:predict', body);
      assert.equal(old.status, 404);
      assert.match(old.json.error, /no version 1 \(label 'old'\)/);
      const unknown = await http(server.url, 'POST', '/v1/models/m/labels/beta:predict', body);
      assert.equal(unknown.status, 404);
      assert.match(unknown.json.error, /no version label 'beta' \(labels: stable, old\)/);
    } finally {
      await server.close();
      await cleanup();
    }
  });

  test('nothing outside the repository is loaded: symlinked escapes fail, odd directory names are skipped', async () => {
    const { dir, cleanup } = await tmpDir();
    const outside = await tmpDir('kiln-outside-');
    try {
      await writeVersion(dir, 'ok', 1, denseModel(1));
      await writeVersion(outside.dir, 'elsewhere', 1, denseModel(2));
      await mkdir(path.join(dir, 'escape'), { recursive: true });
      await symlink(path.join(outside.dir, 'elsewhere', '1'), path.join(dir, 'escape', '1'));
      await mkdir(path.join(dir, 'bad name!', '1'), { recursive: true });
      await writeFile(path.join(dir, 'bad name!', '1', 'model.onnx'), denseModel(3).toOnnx());
      const server = await startServer({ modelRepository: dir });
      try {
        const escape = await versionsOf(server.url, 'escape');
        assert.equal(escape[0]!.state, 'END');
        assert.match(escape[0]!.status.error_message, /outside the model repository/);
        const index = (await http(server.url, 'POST', '/v2/repository/index', {})).json as { name: string }[];
        assert.deepEqual([...new Set(index.map((e) => e.name))].sort(), ['escape', 'ok']);
        for (const name of ['..', '%2e%2e', 'a%2Fb', '.hidden']) {
          const r = await http(server.url, 'GET', `/v2/models/${name}`);
          assert.ok(r.status === 400 || r.status === 404, `${name}: ${r.status}`);
        }
      } finally {
        await server.close();
      }
    } finally {
      await outside.cleanup();
      await cleanup();
    }
  });

  test('repository API: unload drains a model, load brings it back; an invalid config.json is reported', async () => {
    const { dir, cleanup } = await tmpDir();
    await writeVersion(dir, 'm', 1, denseModel(1));
    await writeVersion(dir, 'broken', 1, denseModel(1));
    await writeFile(path.join(dir, 'broken', 'config.json'), '{"maxBatchSize": "lots"}');
    const server = await startServer({ modelRepository: dir });
    try {
      const index = (await http(server.url, 'POST', '/v2/repository/index', {})).json as { name: string; state: string; reason: string }[];
      const broken = index.find((e) => e.name === 'broken')!;
      assert.match(broken.reason, /"maxBatchSize" must be an integer >= 0, found "lots"/);
      // As with Triton's strict readiness, a model that cannot serve keeps the server from being ready.
      assert.equal((await http(server.url, 'GET', '/v2/health/ready')).status, 503);
      const x = randomInput(1, [3]);
      assert.equal((await http(server.url, 'POST', '/v2/models/m/unload', {})).status, 404);
      assert.equal((await http(server.url, 'POST', '/v2/repository/models/m/unload', {})).status, 200);
      const unloaded = await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x));
      assert.equal(unloaded.status, 503);
      assert.equal((await http(server.url, 'GET', '/v2/models/m/ready')).status, 503);
      // tritonclient sends these without a body.
      assert.equal((await http(server.url, 'POST', '/v2/repository/models/m/load', '')).status, 200);
      assert.equal((await http(server.url, 'POST', '/v2/models/m/infer', denseBody(x))).status, 200);
      assert.equal((await http(server.url, 'POST', '/v2/repository/models/ghost/load', {})).status, 404);
    } finally {
      await server.close();
      await cleanup();
    }
  });
});
