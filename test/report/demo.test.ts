/**
 * `kiln demo` tells the whole story (src/cli/demo.ts): train → evaluate → prune (unstructured and
 * structured) → quantize → distill → bench → report, ending with the table, the report's path and how
 * to serve the best model. Run here on a few hundred images so it stays quick; `npx kiln demo` uses all
 * of the embedded subset.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
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

    const tail = lines.join('\n').split('\n').slice(-16);
    const table = tail.findIndex((l) => l.startsWith('Model '));
    assert.ok(table >= 0, `the output ends with the table:\n${tail.join('\n')}`);
    for (const name of variants) assert.ok(tail.some((l) => l.startsWith(`${name} `)), `table row for ${name}`);
    const reportLine = tail.find((l) => l.startsWith('Report: '));
    assert.ok(reportLine && reportLine.endsWith(join(dir, 'report.html')), `report path printed: ${reportLine}`);
    assert.match(tail.at(-2)!, /^Serve the most accurate model \(.+\): kiln serve .+\.onnx --port 8501$/);

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
