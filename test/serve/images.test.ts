/**
 * Images in, labels out, on every protocol: a Fashion-MNIST test image saved as PNG and sent as a
 * file (raw body, multipart form, base64 in JSON: TF Serving {"b64"}, KServe v2 BYTES in JSON and in
 * binary, TorchServe's {"data"}) gets exactly the logits of the same image sent as a tensor — for a
 * channels-last Kiln model and a channels-first PyTorch export — and the labels answered (KServe v2
 * classification, TF Serving :classify, TorchServe /predictions) are the argmax's and the data set's
 * names. Bad images and bad labels files are 4xx / load failures that say why, and the server keeps
 * serving.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { embedded } from '../../src/data/embedded.js';
import { main } from '../../src/cli/main.js';
import { FASHION_MNIST_CLASS_NAMES } from '../../src/data/mnist.js';
import { conv2d, dense, flatten, maxPooling2d } from '../../src/layers/index.js';
import type { ServerHandle } from '../../src/serve/server.js';
import { Tensor } from '../../src/tensor.js';
import { sequential } from '../../src/train/sequential.js';
import { GIF, jpegHeaderOnly, png, pngHeaderOnly } from '../images/files.js';
import { denseModel, http, metricValue, startServer, tmpDir, writeConfig, writeVersion } from './helpers.js';

const NAMES = [...FASHION_MNIST_CLASS_NAMES];

/** A small Fashion-MNIST CNN ([N, 28, 28, 1] → 10 logits) that knows its class names. */
function fashionCnn() {
  const model = sequential({
    seed: 11,
    layers: [conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }), maxPooling2d({ poolSize: 2 }), flatten(), dense({ units: 10 })],
  });
  model.classNames = NAMES;
  return model;
}

function multipart(field: string, file: Buffer, type = 'image/png'): { body: Buffer; headers: Record<string, string> } {
  const boundary = '----kiln-test-boundary';
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="image.png"\r\nContent-Type: ${type}\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** Triton's binary BYTES element: a 4-byte little-endian length, then the bytes. */
function bytesElement(file: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32LE(file.length);
  return Buffer.concat([length, file]);
}

const argmax = (v: number[]) => v.indexOf(Math.max(...v));

describe('image requests and labels', () => {
  let server: ServerHandle;
  let cleanup: () => Promise<void>;
  let pngFile: Buffer;
  let pixels: Float32Array;
  let repo: string;
  const cnn = fashionCnn();

  before(async () => {
    const tmp = await tmpDir();
    cleanup = tmp.cleanup;
    repo = tmp.dir;
    const data = await embedded();
    pixels = data.test.images.slice(3, 4).data as Float32Array;
    // The embedded images are k / 255 in float32: the PNG holds k.
    pngFile = png(Array.from(pixels, (v) => Math.round(v * 255)), 28, 28, 1);
    await writeVersion(repo, 'fashion', 1, cnn);
    await writeConfig(repo, 'fashion', { maxBatchSize: 8, maxQueueDelayMs: 1 });
    // A PyTorch export: [N, 1, 28, 28] (NCHW), class names in labels.txt.
    await writeVersion(repo, 'fashion_nchw', 1, new Uint8Array(await readFile('test/fixtures/exported/mlp.onnx')));
    await writeFile(path.join(repo, 'fashion_nchw', 'labels.txt'), `${NAMES.join('\n')}\n`);
    // Nine names for ten classes: this model fails to load; the others serve.
    await writeVersion(repo, 'mislabelled', 1, fashionCnn());
    await writeFile(path.join(repo, 'mislabelled', 'labels.txt'), NAMES.slice(0, 9).join('\n'));
    await writeVersion(repo, 'dense', 1, denseModel());
    server = await startServer({ modelRepository: repo });
  });
  after(async () => {
    await server.close();
    await cleanup();
  });

  /** The logits of the image sent as a tensor, for a model's input name and layout. */
  async function tensorLogits(model: string, name: string, shape: number[]): Promise<number[]> {
    const r = await http(server.url, 'POST', `/v2/models/${model}/infer`, { inputs: [{ name, shape, datatype: 'FP32', data: Array.from(pixels) }] });
    assert.equal(r.status, 200, r.text);
    return r.json.outputs[0].data;
  }

  test('a PNG sent as a file gets exactly the logits of the same image sent as a tensor, NHWC and NCHW, on every protocol', async () => {
    const expected = await tensorLogits('fashion', 'input', [1, 28, 28, 1]);
    assert.deepEqual(Array.from((await cnn.predict(new Tensor(pixels, [1, 28, 28, 1], 'float32'))).data as Float32Array), expected.map(Math.fround));
    const base64 = pngFile.toString('base64');
    const outputsOf = (r: { status: number; text: string; json: any }) => {
      assert.equal(r.status, 200, r.text);
      return r.json.outputs[0].data;
    };
    // KServe v2: the raw file, BYTES base64 in JSON, BYTES in Triton's binary form.
    assert.deepEqual(outputsOf(await http(server.url, 'POST', '/v2/models/fashion/infer', pngFile, { 'content-type': 'image/png' })), expected);
    assert.deepEqual(outputsOf(await http(server.url, 'POST', '/v2/models/fashion/infer', pngFile, { 'content-type': 'application/x-www-form-urlencoded' })), expected, 'curl --data-binary labels the file form data');
    assert.deepEqual(outputsOf(await http(server.url, 'POST', '/v2/models/fashion/infer', { inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: [base64] }] })), expected);
    const element = bytesElement(pngFile);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', parameters: { binary_data_size: element.length } }] }));
    const binary = await http(server.url, 'POST', '/v2/models/fashion/infer', Buffer.concat([header, element]), { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) });
    assert.deepEqual(outputsOf(binary), expected);
    // TF Serving: {"b64"} in rows and columns, and the raw file.
    const predictions = (r: { status: number; text: string; json: any }, field = 'predictions') => {
      assert.equal(r.status, 200, r.text);
      return r.json[field][0];
    };
    assert.deepEqual(predictions(await http(server.url, 'POST', '/v1/models/fashion:predict', { instances: [{ b64: base64 }] })), expected);
    assert.deepEqual(predictions(await http(server.url, 'POST', '/v1/models/fashion:predict', { instances: [{ input: { b64: base64 } }] })), expected);
    assert.deepEqual(predictions(await http(server.url, 'POST', '/v1/models/fashion:predict', { inputs: { b64: base64 } }), 'outputs'), expected);
    assert.deepEqual(predictions(await http(server.url, 'POST', '/v1/models/fashion:predict', pngFile, { 'content-type': 'image/png' })), expected);
    // Two images in one request are two rows.
    const two = await http(server.url, 'POST', '/v2/models/fashion/infer', { inputs: [{ name: 'input', shape: [2, 1], datatype: 'BYTES', data: [[base64], [base64]] }] });
    assert.deepEqual(two.json.outputs[0].shape, [2, 10]);
    assert.deepEqual(two.json.outputs[0].data, [...expected, ...expected]);

    // The PyTorch export takes [N, 1, 28, 28]: the same file fills it channels-first.
    const nchw = await tensorLogits('fashion_nchw', 'input', [1, 1, 28, 28]);
    assert.deepEqual(outputsOf(await http(server.url, 'POST', '/v2/models/fashion_nchw/infer', pngFile, { 'content-type': 'image/png' })), nchw);
  });

  test('KServe v2 classification: top-k "score:index:label" strings, the first the argmax, labels from metadata and labels.txt', async () => {
    for (const model of ['fashion', 'fashion_nchw']) {
      const logits = model === 'fashion' ? await tensorLogits(model, 'input', [1, 28, 28, 1]) : await tensorLogits(model, 'input', [1, 1, 28, 28]);
      const outputName = model === 'fashion' ? 'output' : 'logits';
      const r = await http(server.url, 'POST', `/v2/models/${model}/infer`, {
        inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: [pngFile.toString('base64')] }],
        outputs: [{ name: outputName, parameters: { classification: 3 } }],
      });
      assert.equal(r.status, 200, r.text);
      const out = r.json.outputs[0];
      assert.equal(out.datatype, 'BYTES');
      assert.deepEqual(out.shape, [1, 3]);
      const order = logits.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]);
      assert.deepEqual(
        out.data,
        order.slice(0, 3).map(([v, i]) => `${v.toFixed(6)}:${i}:${NAMES[i]}`),
      );
      assert.equal(Number(out.data[0].split(':')[1]), argmax(logits));
    }
    const meta = await http(server.url, 'GET', '/v2');
    assert.ok(meta.json.extensions.includes('classification'));
  });

  test("TF Serving :classify answers the class names, for a tensor or an image example", async () => {
    const logits = await tensorLogits('fashion', 'input', [1, 28, 28, 1]);
    const r = await http(server.url, 'POST', '/v1/models/fashion:classify', { examples: [{ input: { b64: pngFile.toString('base64') } }] });
    assert.equal(r.status, 200, r.text);
    const [first] = r.json.results[0];
    assert.deepEqual(first, [NAMES[argmax(logits)], logits[argmax(logits)]]);
    assert.equal(r.json.results[0].length, 10);
    const raw = await http(server.url, 'POST', '/v1/models/fashion:classify', pngFile, { 'content-type': 'image/png' });
    assert.deepEqual(raw.json, r.json);
  });

  test('TorchServe /predictions: {label: probability} of the top 5, softmax of the logits, for a raw file, a form, base64 JSON', async () => {
    const logits = await tensorLogits('fashion', 'input', [1, 28, 28, 1]);
    const max = Math.max(...logits);
    const exps = logits.map((v) => Math.exp(v - max));
    const total = exps.reduce((a, b) => a + b, 0);
    const probs = exps.map((e) => Math.fround(e / total));
    const expected = Object.fromEntries(
      probs
        .map((p, i) => [NAMES[i]!, p] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5),
    );
    const form = multipart('data', pngFile);
    for (const [method, body, headers] of [
      ['PUT', pngFile, {}],
      ['POST', pngFile, { 'content-type': 'image/png' }],
      ['POST', form.body, form.headers],
      ['POST', { data: pngFile.toString('base64') }, {}],
    ] as const) {
      const r = await http(server.url, method, '/predictions/fashion', body, headers);
      assert.equal(r.status, 200, `${method}: ${r.text}`);
      assert.deepEqual(Object.keys(r.json), Object.keys(expected), 'top 5 in order');
      for (const [label, p] of Object.entries(expected)) assert.ok(Math.abs(r.json[label] - p) < 1e-6, `${label}: ${r.json[label]} vs ${p}`);
      assert.equal(Object.keys(r.json)[0], NAMES[argmax(logits)]);
    }
    // Version in the path, TorchServe's "1.0" spelling too; the same image as JSON numbers.
    const versioned = await http(server.url, 'POST', '/predictions/fashion/1.0', pngFile, { 'content-type': 'image/png' });
    assert.deepEqual(Object.keys(versioned.json), Object.keys(expected));
    const asNumbers = await http(server.url, 'POST', '/predictions/fashion', Array.from({ length: 28 }, (_, y) => Array.from({ length: 28 }, (_, x) => [pixels[y * 28 + x]])));
    assert.deepEqual(Object.keys(asNumbers.json), Object.keys(expected));
    // A model that is no classifier answers its output's values.
    const plain = await http(server.url, 'POST', '/predictions/dense', [0.5, -1, 2]);
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.json.length, 2);
  });

  test('kiln predict --image FILE [--topk K] sends the file and prints the response: top-k names, the argmax first', async () => {
    const file = path.join(repo, 'shoe.png');
    await writeFile(file, pngFile);
    const run = async (args: string[]) => {
      const lines: string[] = [];
      const errors: string[] = [];
      const code = await main(['predict', '--url', server.url, '--model', 'fashion', ...args], (l) => lines.push(l), (l) => errors.push(l));
      return { code, out: lines.join('\n'), err: errors.join('\n') };
    };
    const logits = await tensorLogits('fashion', 'input', [1, 28, 28, 1]);
    const plain = await run(['--image', file]);
    assert.equal(plain.code, 0, plain.err);
    assert.deepEqual(JSON.parse(plain.out).outputs[0].data, logits);
    const top = await run(['--image', file, '--topk', '3']);
    assert.equal(top.code, 0, top.err);
    const strings: string[] = JSON.parse(top.out).outputs[0].data;
    assert.equal(strings.length, 3);
    assert.equal(strings[0], `${logits[argmax(logits)]!.toFixed(6)}:${argmax(logits)}:${NAMES[argmax(logits)]}`);
    const gif = path.join(repo, 'anim.gif');
    await writeFile(gif, GIF);
    const refused = await run(['--image', gif]);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /anim\.gif is a GIF image; Kiln decodes JPEG and PNG only/);
  });

  test('image requests go through the same queue and metrics as tensors', async () => {
    const before = metricValue(await (await fetch(`${server.url}/metrics`)).text(), 'kiln_inference_request_success_total', 'model="fashion"');
    const results = await Promise.all(Array.from({ length: 12 }, () => http(server.url, 'POST', '/v2/models/fashion/infer', pngFile, { 'content-type': 'image/png' })));
    assert.ok(results.every((r) => r.status === 200));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(metricValue(metrics, 'kiln_inference_request_success_total', 'model="fashion"') - before, 12);
  });

  test('bad images are 4xx that say why, checked from the header before decoding; the server keeps serving', async () => {
    const cases: [Buffer, Record<string, string>, number, RegExp][] = [
      [GIF, { 'content-type': 'image/gif' }, 415, /is a GIF image; Kiln decodes JPEG and PNG only/],
      [pngHeaderOnly(50_000, 50_000), { 'content-type': 'image/png' }, 400, /declares 50000 × 50000 pixels .* refused before decoding/],
      [jpegHeaderOnly(50_000, 50_000), { 'content-type': 'image/jpeg' }, 400, /declares 50000 × 50000 pixels/],
      [pngFile.subarray(0, pngFile.length - 30), { 'content-type': 'image/png' }, 400, /PNG file that cannot be decoded \(corrupt or truncated\)/],
      [Buffer.from('not an image at all'), { 'content-type': 'image/png' }, 415, /is not a JPEG or PNG file/],
    ];
    for (const [body, headers, status, pattern] of cases) {
      for (const route of ['/v2/models/fashion/infer', '/v1/models/fashion:predict', '/predictions/fashion']) {
        const r = await http(server.url, 'POST', route, body, headers);
        assert.equal(r.status, status, `${route}: ${r.text}`);
        assert.match(r.json.error, pattern, route);
      }
    }
    const b64 = await http(server.url, 'POST', '/v2/models/fashion/infer', { inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['***'] }] });
    assert.equal(b64.status, 400);
    assert.match(b64.json.error, /input 'input' element 0 is not base64 text/);
    const notImage = await http(server.url, 'POST', '/v2/models/dense/infer', pngFile, { 'content-type': 'image/png' });
    assert.equal(notImage.status, 400);
    assert.match(notImage.json.error, /model 'dense' version 1 cannot take images: .*is not an image input: its shape is \[N, 3\]/);
    const tooMany = await http(server.url, 'POST', '/v2/models/fashion/infer', {
      inputs: [{ name: 'input', shape: [1], datatype: 'BYTES', data: [pngFile.toString('base64')] }],
      outputs: [{ name: 'output', parameters: { classification: 0 } }],
    });
    assert.equal(tooMany.status, 400);
    assert.match(tooMany.json.error, /"classification" parameter must be a positive integer/);
    const ok = await http(server.url, 'POST', '/v2/models/fashion/infer', pngFile, { 'content-type': 'image/png' });
    assert.equal(ok.status, 200);
  });

  test('a labels.txt with the wrong number of lines fails its model at load, saying so; the others serve', async () => {
    const index = await http(server.url, 'POST', '/v2/repository/index', {});
    const entry = index.json.find((e: { name: string }) => e.name === 'mislabelled');
    assert.equal(entry.state, 'FAILED');
    assert.match(entry.reason, /the class labels \(labels.txt or config.json "labels"\) name 9 classes, but output 'output' \[-1, 10\] scores 10/);
    const r = await http(server.url, 'POST', '/predictions/mislabelled', pngFile, { 'content-type': 'image/png' });
    assert.equal(r.status, 503);
    assert.equal((await http(server.url, 'GET', '/v2/models/fashion/ready')).status, 200);
    // A blank line is refused as the model's config; a labels.txt beside config.json "labels" too.
    await writeFile(path.join(repo, 'mislabelled', 'labels.txt'), `${NAMES.slice(0, 4).join('\n')}\n\n${NAMES.slice(5).join('\n')}\n`);
    await server.reload();
    assert.match(server.registry.models.get('mislabelled')!.configError!, /mislabelled\/labels.txt: line 5 is blank/);
    await writeConfig(repo, 'mislabelled', { labels: NAMES });
    await writeFile(path.join(repo, 'mislabelled', 'labels.txt'), NAMES.join('\n'));
    await server.reload();
    assert.match(server.registry.models.get('mislabelled')!.configError!, /labels.txt and mislabelled\/config.json "labels" both name the classes; keep one/);
    // Fixed: the failed version loads again under the new config, and answers with the names.
    await writeConfig(repo, 'mislabelled', {});
    await server.reload();
    const fixed = await http(server.url, 'POST', '/predictions/mislabelled', pngFile, { 'content-type': 'image/png' });
    assert.equal(fixed.status, 200, fixed.text);
    assert.ok(Object.keys(fixed.json).every((label) => NAMES.includes(label)));
  });
});
