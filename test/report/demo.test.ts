/**
 * `kiln demo` tells the whole story (src/cli/demo.ts): train → evaluate → prune (unstructured and
 * structured) → quantize → distill → bench → report, ending with the table, the report's path, how
 * to serve the best model and a curl that sends it a test image as a PNG (which this test sends). Run here on a few hundred images so it stays quick; `npx kiln demo` uses all
 * of the embedded subset.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { embedded } from '../../src/data/embedded.js';
import { FASHION_MNIST_CLASS_NAMES } from '../../src/data/mnist.js';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { serve } from '../../src/serve/server.js';
import { makeTempDir } from '../model/helpers.js';

describe('kiln demo', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  before(async () => {
    temp = await makeTempDir('kiln-demo-test-');
  });
  after(() => temp.remove());

  it('runs every step and ends with the table, the report and how to serve the best model', async () => {
    const dir = join(temp.dir, 'demo');
    const lines: string[] = [];
    const code = await main(['demo', '--epochs', '1', '--fine-tune-epochs', '1', '--distill-epochs', '1', '--limit', '300', '--test-limit', '200', '--out-dir', dir], (l) => lines.push(l));
    const text = lines.join('\n');
    assert.equal(code, 0, text);
    assert.ok(!text.includes('skipped:'), `no step skipped:\n${text}`);
    const variants = ['cnn', 'cnn-pruned', 'cnn-structured', 'cnn-int8', 'student'];
    for (const name of variants) assert.ok(existsSync(join(dir, `${name}.onnx`)), `${name}.onnx written`);
    for (let k = 1; k <= 8; k++) assert.ok(text.includes(`\n${k}/8  `), `step ${k} announced`);

    const tail = lines.join('\n').split('\n').slice(-18);
    const table = tail.findIndex((l) => l.startsWith('Model '));
    assert.ok(table >= 0, `the output ends with the table:\n${tail.join('\n')}`);
    for (const name of variants) assert.ok(tail.some((l) => l.startsWith(`${name} `)), `table row for ${name}`);
    const reportLine = tail.find((l) => l.startsWith('Report: '));
    assert.ok(reportLine && reportLine.endsWith(join(dir, 'report.html')), `report path printed: ${reportLine}`);
    const serveAt = tail.findIndex((l) => l.startsWith('Serve the most accurate model'));
    const serveLine = /^Serve the most accurate model \((.+), .+\): kiln serve (.+\.onnx) --port 8501$/.exec(tail[serveAt] ?? '');
    assert.ok(serveLine, `how to serve the best model:\n${tail.join('\n')}`);
    // Then a ready-to-run curl sending one embedded test image as a PNG to the served model.
    assert.match(tail[serveAt + 1]!, /^ {2}then send it test image 0 \(a '.+'\) as a PNG; it answers the top 5 classes by name/);
    const curl = /^ {2}curl -T (\S+\.png) http:\/\/127\.0\.0\.1:8501(\/predictions\/(\S+))$/.exec(tail[serveAt + 2]!);
    assert.ok(curl, `the curl line: ${tail[serveAt + 2]}`);
    assert.equal(curl[3], serveLine[1]);
    assert.equal(tail.length - 1, serveAt + 2, 'the curl ends the output');
    // Every variant knows the class names, so whichever is served answers with them.
    for (const name of variants) assert.deepEqual(JSON.parse((await OnnxModel.load(join(dir, `${name}.onnx`))).description.metadata['kiln.labels']!), [...FASHION_MNIST_CLASS_NAMES]);
    // The command works: the same request against the served model (on a free port) names the model's own answer first.
    const server = await serve({ model: serveLine[2]!, port: 0, logLevel: 'silent' });
    try {
      const res = await fetch(`${server.url}${curl[2]}`, { method: 'PUT', body: await readFile(curl[1]!) });
      assert.equal(res.status, 200);
      const answer = (await res.json()) as Record<string, number>;
      assert.equal(Object.keys(answer).length, 5);
      const data = await embedded();
      const scores = (await (await OnnxModel.load(serveLine[2]!)).predict(data.test.images.slice(0, 1))).data as Float32Array;
      assert.equal(Object.keys(answer)[0], FASHION_MNIST_CLASS_NAMES[scores.indexOf(Math.max(...scores))]);
    } finally {
      await server.close();
    }

    const html = await readFile(join(dir, 'report.html'), 'utf8');
    assert.equal(html.match(/<svg\b/g)?.length, 4);
    const measured = JSON.parse(await readFile(join(dir, 'bench.json'), 'utf8'));
    assert.deepEqual(measured.models.map((m: { name: string }) => m.name), variants);
    const [cnn, pruned, structured, int8, student] = measured.models;
    assert.ok(pruned.nonZeroParameters < 0.5 * cnn.nonZeroParameters, 'unstructured pruning zeroes weights');
    assert.ok(structured.parameters < 0.5 * cnn.parameters, 'structured pruning removes parameters');
    assert.ok(int8.fileBytes < 0.5 * cnn.fileBytes, 'int8 weights take less space');
    assert.ok(student.parameters <= 0.25 * cnn.parameters, 'the student has at most a quarter of the parameters');
  });
});
