/**
 * `kiln distill` (src/cli/distill.ts): a teacher file and a data set directory in, a student file out,
 * with the default student or one described by a JSON list of layers, and the comparison table printed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphModel, loadModel, Sequential } from '../../../src/index.js';
import { encodeModel } from '../../../src/graph/proto.js';
import { readOnnxFile } from '../../../src/model/read-model.js';
import { main } from '../../../src/cli/main.js';
import { makeTempDir } from '../../model/helpers.js';
import { tinyData, trainedTinyCnn, writeIdxDataset } from '../../bench/fixtures.js';

describe('kiln distill', () => {
  let temp: Awaited<ReturnType<typeof makeTempDir>>;
  let teacher: string;
  let dataset: string;

  before(async () => {
    temp = await makeTempDir('kiln-distill-cli-');
    const data = await tinyData(300, 100);
    teacher = join(temp.dir, 'teacher.onnx');
    await (await trainedTinyCnn(data, 1)).save(teacher);
    dataset = await writeIdxDataset(join(temp.dir, 'data'), data);
  });
  after(() => temp.remove());

  it('distills into the default student and saves it with its history', async () => {
    const out = join(temp.dir, 'student.onnx');
    const lines: string[] = [];
    const code = await main(['distill', '--teacher', teacher, '--dataset', dataset, '--epochs', '1', '--batch-size', '50', '--out', out], (l) => lines.push(l));
    const text = lines.join('\n');
    assert.equal(code, 0, text);
    for (const row of ['parameters', 'test accuracy', 'test macro F1', `Saved ${out}`]) assert.ok(text.includes(row), `output mentions ${row}:\n${text}`);
    const student = await loadModel(out);
    assert.ok(student instanceof Sequential);
    assert.ok(student.countParams().total <= 0.25 * 13_610, `student has ${student.countParams().total} parameters`);
    assert.ok(student.metadata.get('kiln.history') && student.metadata.get('kiln.distillation'));
  });

  it('takes the student as a JSON list of layers, and T and alpha as options', async () => {
    const spec = join(temp.dir, 'student.json');
    await writeFile(spec, JSON.stringify([
      { className: 'Flatten', config: { inputShape: [28, 28, 1] } },
      { className: 'Dense', config: { units: 10 } },
    ]));
    const out = join(temp.dir, 'linear.onnx');
    const code = await main(['distill', '--teacher', teacher, '--student', spec, '--dataset', dataset, '--temperature', '2', '--alpha', '0.5', '--epochs', '1', '--out', out], () => undefined);
    assert.equal(code, 0);
    const made = JSON.parse(((await loadModel(out)) as Sequential).metadata.get('kiln.distillation')!);
    assert.equal(made.temperature, 2);
    assert.equal(made.alpha, 0.5);
  });

  it('--crop-padding and --flip augment the batches, and the teacher runs on each augmented batch', async () => {
    const out = join(temp.dir, 'augmented.onnx');
    const lines: string[] = [];
    const code = await main(['distill', '--teacher', teacher, '--dataset', dataset, '--epochs', '1', '--crop-padding', '2', '--flip', '--out', out], (l) => lines.push(l));
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /teacher on each augmented batch/);
    const made = JSON.parse(((await loadModel(out)) as Sequential).metadata.get('kiln.distillation')!);
    assert.deepEqual(made.augment, { cropPadding: 2, horizontalFlip: true });
  });

  it('distills an exported teacher into an exported student (--student other.onnx): the student saves as its own graph', async () => {
    const out = join(temp.dir, 'mlp-student.onnx');
    const lines: string[] = [];
    const code = await main(['distill', '--teacher', 'test/fixtures/exported/resnet.onnx', '--student', 'test/fixtures/exported/mlp.onnx', '--dataset', dataset, '--epochs', '1', '--out', out], (l) => lines.push(l));
    const text = lines.join('\n');
    assert.equal(code, 0, text);
    assert.match(text, /parameters\s+5,122\s+52,650/);
    assert.match(text, /its outputs read as logits\)/);
    const student = await loadModel(out);
    assert.ok(student instanceof GraphModel);
    assert.deepEqual(student.modelInput.name, 'input');
    assert.ok(student.metadata.get('kiln.distillation'));
  });

  it('reads a teacher that ends in Softmax before it, and says which value it read', async () => {
    const { proto } = await readOnnxFile('test/fixtures/exported/mlp.onnx');
    const g = proto.graph!;
    const softmaxTeacher = join(temp.dir, 'mlp-softmax.onnx');
    await writeFile(softmaxTeacher, encodeModel({ ...proto, graph: { ...g, node: [...g.node!, { opType: 'Softmax', input: ['logits'], output: ['probs'], attribute: [{ name: 'axis', type: 2, i: 1 }] }], output: [{ ...g.output![0]!, name: 'probs' }] } }));
    const lines: string[] = [];
    const code = await main(['distill', '--teacher', softmaxTeacher, '--dataset', dataset, '--epochs', '1', '--out', join(temp.dir, 's.onnx')], (l) => lines.push(l));
    assert.equal(code, 0, lines.join('\n'));
    assert.match(lines.join('\n'), /read as logits: the input 'logits' of its final Softmax/);
  });

  it('says what is missing without --teacher', async () => {
    const errors: string[] = [];
    assert.equal(await main(['distill', '--dataset', dataset], () => undefined, (l) => errors.push(l)), 1);
    assert.match(errors.join('\n'), /--teacher/);
  });
});
