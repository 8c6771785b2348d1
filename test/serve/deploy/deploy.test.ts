import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { main } from '../../../src/cli/main.js';
import { encryptModel } from '../../../src/model/encrypt-model-file.js';
import { client } from '../../../src/serve/client.js';
import { deployKServe } from '../../../src/serve/deploy/kserve.js';
import { deployTriton, tritonConfig } from '../../../src/serve/deploy/triton.js';
import { DEFAULT_MODEL_CONFIG } from '../../../src/serve/config.js';
import { CLI, denseModel, fixedShapeModel, http, randomInput, smallCnn, startServer, tmpDir, twoInputModel, writeConfig, writeVersion } from '../helpers.js';
import { parseTextFormat } from './text-format.js';
import { ModelConfig } from './triton-schema.js';

/*
 * kiln deploy: the Triton repository's config.pbtxt files parsed against Triton's model configuration,
 * the KServe manifests parsed as YAML, the Dockerfile's instructions; all-or-nothing output; and the
 * server honouring the conventions the files rely on (environment variables, /mnt/models, probes).
 */

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, (l) => out.push(l), (l) => err.push(l));
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('kiln deploy triton', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const cnn = [smallCnn(1), smallCnn(2)];

  before(async () => {
    ({ dir, cleanup } = await tmpDir('kiln-deploy-'));
    const repo = path.join(dir, 'models');
    await writeVersion(repo, 'cnn', 1, cnn[0]!);
    await writeVersion(repo, 'cnn', 3, cnn[1]!);
    await writeConfig(repo, 'cnn', { maxBatchSize: 32, maxQueueDelayMs: 2.5, maxQueueSize: 100, instances: 2, intraOpThreads: 1, versionPolicy: 'all', labels: ['a', 'b', 'c'] });
    await writeVersion(repo, 'fixed', 1, fixedShapeModel());
    await writeVersion(repo, 'pair', 1, twoInputModel());
    await writeConfig(repo, 'pair', { inputNames: { x: 'left' }, versionPolicy: { specific: [1] }, versionLabels: { stable: 1 } });
  });
  after(() => cleanup());

  test('config.pbtxt parses against Triton ModelConfig and carries the Kiln config; model files are copied unchanged', async () => {
    const out = path.join(dir, 'triton');
    const r = await run('deploy', 'triton', '--model-repository', path.join(dir, 'models'), '--out', out);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /note: pair: Triton names tensors as the ONNX file does; clients must use 'x' for 'left'/);
    assert.match(r.out, /note: pair: version labels \(stable\) are TF Serving's/);
    assert.deepEqual((await readdir(out, { recursive: true })).sort(), ['cnn', 'cnn/1', 'cnn/1/model.onnx', 'cnn/3', 'cnn/3/model.onnx', 'cnn/config.pbtxt', 'cnn/labels.txt', 'fixed', 'fixed/1', 'fixed/1/model.onnx', 'fixed/config.pbtxt', 'pair', 'pair/1', 'pair/1/model.onnx', 'pair/config.pbtxt']);
    const config = async (model: string) => parseTextFormat(ModelConfig, await readFile(path.join(out, model, 'config.pbtxt'), 'utf8'));
    assert.deepEqual(await config('cnn'), {
      name: 'cnn',
      platform: 'onnxruntime_onnx',
      max_batch_size: 32,
      version_policy: { all: {} },
      input: [{ name: 'input', data_type: 'TYPE_FP32', dims: [6, 6, 2] }],
      output: [{ name: 'output', data_type: 'TYPE_FP32', dims: [3], label_filename: 'labels.txt' }],
      dynamic_batching: { preferred_batch_size: [32], max_queue_delay_microseconds: 2500, default_queue_policy: { max_queue_size: 100 } },
      instance_group: [{ count: 2, kind: 'KIND_CPU' }],
      parameters: [{ key: 'intra_op_thread_count', value: { string_value: '1' } }],
    });
    assert.equal(await readFile(path.join(out, 'cnn', 'labels.txt'), 'utf8'), 'a\nb\nc\n');
    // No batch dimension: max_batch_size 0 and the full shape.
    assert.deepEqual(await config('fixed'), {
      name: 'fixed',
      platform: 'onnxruntime_onnx',
      max_batch_size: 0,
      version_policy: { latest: { num_versions: 1 } },
      input: [{ name: 'x', data_type: 'TYPE_FP32', dims: [2, 3] }],
      output: [{ name: 'y', data_type: 'TYPE_FP32', dims: [2, 3] }],
      instance_group: [{ count: 1, kind: 'KIND_CPU' }],
    });
    // The default 256-row limit without merging: Triton batches up to 256 rows per request, with no dynamic batcher.
    const pair = await config('pair');
    assert.equal(pair.max_batch_size, 256);
    assert.equal(pair.dynamic_batching, undefined);
    assert.deepEqual(pair.version_policy, { specific: { versions: [1] } });
    assert.deepEqual(pair.input, [
      { name: 'x', data_type: 'TYPE_FP32', dims: [3] },
      { name: 'y', data_type: 'TYPE_FP32', dims: [3] },
    ]);
    assert.deepEqual(await readFile(path.join(out, 'cnn', '3', 'model.onnx')), await readFile(path.join(dir, 'models', 'cnn', '3', 'model.onnx')));
    // The same files still serve through Kiln (it reads the models, not config.pbtxt).
    const server = await startServer({ modelRepository: out });
    try {
      const x = randomInput(2, [6, 6, 2], 91);
      const answer = await client(server.url).infer('cnn', { input: x }, { version: 3 });
      assert.deepEqual(Array.from(answer.output!.data as Float32Array), Array.from((await cnn[1]!.predict(x)).data as Float32Array));
    } finally {
      await server.close();
    }
  });

  test("an output of one value per example ([batch]: an argmax's class) is dims [1] with reshape { shape: [ ] }, as Triton's model configuration asks", () => {
    const spec = (name: string, dtype: 'float32' | 'int64', shape: number[]) => ({ name, onnxName: name, dtype, shape });
    const signature = { inputs: [spec('x', 'float32', [-1, 3])], outputs: [spec('logits', 'float32', [-1, 3]), spec('label', 'int64', [-1])], batchable: true };
    const parsed = parseTextFormat(ModelConfig, tritonConfig('argmax', DEFAULT_MODEL_CONFIG, signature).text);
    assert.deepEqual(parsed.output, [
      { name: 'logits', data_type: 'TYPE_FP32', dims: [3] },
      { name: 'label', data_type: 'TYPE_INT64', dims: [1], reshape: { shape: [] } },
    ]);
  });

  test('the text-format parser refuses what Triton would: an unknown field, a wrong enum, a string for a number', () => {
    assert.throws(() => parseTextFormat(ModelConfig, 'name: "m"\nmax_batch: 4'), /ModelConfig has no field 'max_batch'/);
    assert.throws(() => parseTextFormat(ModelConfig, 'input [ { name: "x" data_type: FP32 } ]'), /FP32 is not a value of enum DataType/);
    assert.throws(() => parseTextFormat(ModelConfig, 'max_batch_size: "4"'), /expected a number/);
    assert.throws(() => parseTextFormat(ModelConfig, 'name: "a"\nname: "b"'), /singular field given twice/);
  });

  test('an existing non-empty --out, an encrypted version, a config error: clear errors, and nothing written', async () => {
    const busy = path.join(dir, 'busy');
    await mkdir(busy);
    await writeFile(path.join(busy, 'keep.txt'), 'mine');
    const r = await run('deploy', 'triton', '--model-repository', path.join(dir, 'models'), '--out', busy);
    assert.equal(r.code, 1);
    assert.match(r.err, /--out '.*busy' exists and is not empty \(1 entries, e.g. 'keep.txt'\); give a new or empty directory/);
    assert.deepEqual(await readdir(busy), ['keep.txt']);

    const secret = path.join(dir, 'secret-models');
    await writeVersion(secret, 'a', 1, denseModel(1));
    await mkdir(path.join(secret, 'b', '1'), { recursive: true });
    await writeFile(path.join(secret, 'b', '1', 'model.onnx.enc'), encryptModel(denseModel(2).toOnnx(), randomBytes(32)));
    await assert.rejects(deployTriton({ modelRepository: secret, out: path.join(dir, 'never') }), /b\/1\/model\.onnx\.enc is encrypted \(kiln encrypt\), which Triton cannot read/);
    const broken = path.join(dir, 'broken-models');
    await writeVersion(broken, 'a', 1, denseModel(1));
    await writeConfig(broken, 'a', { maxBatchSize: 'many' });
    await assert.rejects(deployTriton({ modelRepository: broken, out: path.join(dir, 'never') }), /a\/config\.json: "maxBatchSize" must be an integer >= 0, found "many"/);
    // Neither the target nor a staging directory was left behind.
    assert.deepEqual((await readdir(dir)).filter((e) => e.includes('never')), []);
    // An empty directory is a fine target.
    await mkdir(path.join(dir, 'empty'));
    assert.equal((await run('deploy', 'triton', '--model-repository', path.join(dir, 'models'), '--out', path.join(dir, 'empty'))).code, 0);
  });
});

describe('kiln deploy kserve', () => {
  let dir: string;
  let cleanup: () => Promise<void>;

  before(async () => {
    ({ dir, cleanup } = await tmpDir('kiln-kserve-'));
    await writeVersion(path.join(dir, 'My_Models'), 'dense', 1, denseModel(1));
  });
  after(() => cleanup());

  test('a Dockerfile, a ClusterServingRuntime and an InferenceService that parse and say what KServe needs', async () => {
    const out = path.join(dir, 'k8s');
    const r = await run('deploy', 'kserve', '--model-repository', path.join(dir, 'My_Models'), '--out', out, '--max-replicas', '8', '--scale-target', '32');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /note: storageUri is pvc:\/\/my-models-models\//);
    assert.deepEqual((await readdir(out)).sort(), ['.dockerignore', 'Dockerfile', 'inference-service.yaml', 'serving-runtime.yaml']);

    const docker = await readFile(path.join(out, 'Dockerfile'), 'utf8');
    const instructions = docker.split('\n').filter((l) => /^[A-Z]+ /.test(l)).map((l) => l.split(' ')[0]);
    assert.deepEqual(instructions, ['FROM', 'ENV', 'COPY', 'RUN', 'USER', 'EXPOSE', 'HEALTHCHECK', 'ENTRYPOINT']);
    assert.match(docker, /^FROM node:24-slim$/m);
    assert.match(docker, /^USER 1000:1000$/m);
    assert.match(docker, /^EXPOSE 8080 8081$/m);
    assert.match(docker, /KILN_MODEL_REPOSITORY=\/mnt\/models/);
    assert.match(docker, /KILN_PORT=8080/);
    assert.match(docker, /KILN_GRPC_PORT=8081/);
    assert.match(docker, /127\.0\.0\.1:8080\/v2\/health\/ready/);
    assert.deepEqual(JSON.parse(/^ENTRYPOINT (.*)$/m.exec(docker)![1]!), ['kiln', 'serve']);

    const runtime = parseYaml(await readFile(path.join(out, 'serving-runtime.yaml'), 'utf8'));
    assert.equal(runtime.apiVersion, 'serving.kserve.io/v1alpha1');
    assert.equal(runtime.kind, 'ClusterServingRuntime');
    assert.equal(runtime.metadata.name, 'kiln');
    assert.deepEqual(runtime.spec.supportedModelFormats, [{ name: 'onnx', version: '1', autoSelect: true }]);
    assert.deepEqual(runtime.spec.protocolVersions, ['v2', 'grpc-v2']);
    const [container] = runtime.spec.containers;
    assert.equal(container.name, 'kserve-container');
    assert.equal(container.image, 'kiln-serve:0.1.0');
    assert.deepEqual(container.args, ['--model-repository', '/mnt/models', '--host', '0.0.0.0', '--port', '8080', '--grpc-port', '8081']);
    assert.deepEqual(container.ports, [{ containerPort: 8080, protocol: 'TCP' }]);
    assert.deepEqual(container.livenessProbe.httpGet, { path: '/v2/health/live', port: 8080 });
    assert.deepEqual(container.readinessProbe.httpGet, { path: '/v2/health/ready', port: 8080 });
    assert.deepEqual(container.startupProbe.httpGet, { path: '/v2/health/live', port: 8080 });
    assert.equal(container.securityContext.runAsNonRoot, true);
    assert.equal(container.env, undefined);

    const isvc = parseYaml(await readFile(path.join(out, 'inference-service.yaml'), 'utf8'));
    assert.equal(isvc.apiVersion, 'serving.kserve.io/v1beta1');
    assert.equal(isvc.kind, 'InferenceService');
    assert.equal(isvc.metadata.name, 'my-models');
    assert.deepEqual(isvc.spec.predictor, {
      minReplicas: 1,
      maxReplicas: 8,
      scaleMetric: 'concurrency',
      scaleTarget: 32,
      model: { modelFormat: { name: 'onnx' }, protocolVersion: 'v2', runtime: 'kiln', storageUri: 'pvc://my-models-models/' },
    });
  });

  test('encrypted versions: the runtime reads the key from a Secret; a bad name or replica range is refused', async () => {
    const repo = path.join(dir, 'enc');
    await mkdir(path.join(repo, 'm', '1'), { recursive: true });
    await writeFile(path.join(repo, 'm', '1', 'model.onnx.enc'), encryptModel(denseModel(1).toOnnx(), randomBytes(32)));
    const result = await deployKServe({ modelRepository: repo, out: path.join(dir, 'enc-k8s'), storageUri: 's3://bucket/models', image: 'registry.example/kiln:1' });
    assert.match(result.notes.join('\n'), /kubectl create secret generic kiln-model-key --from-file=key=/);
    const runtime = parseYaml(await readFile(path.join(dir, 'enc-k8s', 'serving-runtime.yaml'), 'utf8'));
    assert.deepEqual(runtime.spec.containers[0].env, [{ name: 'KILN_MODEL_KEY', valueFrom: { secretKeyRef: { name: 'kiln-model-key', key: 'key' } } }]);
    assert.equal(runtime.spec.containers[0].image, 'registry.example/kiln:1');
    assert.equal(parseYaml(await readFile(path.join(dir, 'enc-k8s', 'inference-service.yaml'), 'utf8')).spec.predictor.model.storageUri, 's3://bucket/models');
    await assert.rejects(deployKServe({ modelRepository: repo, out: path.join(dir, 'x'), name: 'Bad_Name' }), /InferenceService name "Bad_Name" must be a DNS label/);
    await assert.rejects(deployKServe({ modelRepository: repo, out: path.join(dir, 'x'), minReplicas: 5, maxReplicas: 2 }), /--max-replicas 2 is below --min-replicas 5/);
  });
});

/** A port free now (the kernel's pick, released), for a server that must be told its port by environment. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

test('kiln serve takes its repository and ports from KILN_MODEL_REPOSITORY, PORT and KILN_GRPC_PORT, as the container sets them', async () => {
  const { dir, cleanup } = await tmpDir();
  await writeVersion(dir, 'dense', 1, denseModel(1));
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, KILN_MODEL_REPOSITORY: dir, PORT: String(port), KILN_GRPC_PORT: '0', KILN_HOST: '127.0.0.1' };
  delete env.KILN_PORT;
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const exit = new Promise((resolve) => child.once('exit', resolve));
  try {
    const listening = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('kiln serve did not start in 20 s')), 20_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        if (entry.msg === 'kiln serve listening') {
          clearTimeout(timer);
          resolve(entry);
        }
      });
    });
    assert.equal(listening.url, `http://127.0.0.1:${port}`);
    assert.equal((await http(`http://127.0.0.1:${port}`, 'GET', '/v2/health/ready')).status, 200);
    const grpc = client(`grpc://${listening.grpc}`);
    assert.equal(await grpc.modelReady('dense'), true);
    grpc.close();
  } finally {
    child.kill('SIGTERM');
    await exit;
    await cleanup();
  }
});
