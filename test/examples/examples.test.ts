/**
 * Runs every example as a user would (the compiled file, `node dist/examples/<name>.js`), on the
 * embedded data set with one epoch on a slice of it, in a scratch directory: train-and-save first,
 * the others on the model it saved, two at a time. Each must exit 0 and print what it promises. A new
 * example without an entry here fails the suite; the runner's own test shows a broken example fails.
 * (The examples' types are checked against the public API in test/docs/snippets.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../../src/train/load.js';
import { Sequential } from '../../src/train/sequential.js';

const DIST_EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const SOURCE_EXAMPLES = path.resolve(DIST_EXAMPLES, '..', '..', 'examples');

/** Runs a compiled example; rejects with its exit code and output when it fails. */
export function runExample(file: string, args: string[], cwd: string, timeoutMs = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file, ...args], { cwd, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed (exit ${error.code ?? error.signal}):\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const QUICK = ['--epochs', '1', '--limit', '1000'];

/** Each example: its arguments for a quick run and what its output must show. */
const EXAMPLES: Record<string, { args: string[]; expect: RegExp[]; writes?: string[] }> = {
  'fine-tune': { args: QUICK, expect: [/a Kiln model \(Sequential\)/, /before: test accuracy 0\.\d{4}/, /after: test accuracy 0\.\d{4}/], writes: ['fine-tuned.onnx'] },
  prune: {
    args: QUICK,
    expect: [/magnitude pruning, 75% .*\n.*parameters 56714 -> 56714, non-zero 567\d\d -> \d+/, /kernel sparsity 75\.00%/, /structured pruning.*\n.*parameters 56714 -> 14410/, /units 32 -> 16/],
    writes: ['pruned-sparse.onnx', 'pruned-structured.onnx'],
  },
  quantize: {
    args: ['--limit', '500', '--calibration-samples', '64'],
    expect: [/static int8: \d+ -> \d+ bytes \(3\.\d\dx smaller\)/, /conv2d_1: int8/, /predictions agree/, /float16: \d+ -> \d+ bytes/],
    writes: ['fashion-cnn.int8.onnx', 'fashion-cnn.float16.onnx'],
  },
  distill: { args: QUICK, expect: [/teacher 56714 parameters, student \d+ \((1\d|2[0-5])\.\d%\)/, /test accuracy: distilled student 0\.\d{4}/], writes: ['student.onnx'] },
  'serve-and-call': {
    args: [],
    expect: [/ready: true/, /KServe v2: (\S+(, )?){8}/, /binary tensors: output shape \[8, 10\]/, /TF Serving :predict: 2 rows of 10 scores/, /:classify, top 3: \S+ -?\d/, /kiln_inference_request_success_total\{model="fashion",version="1"\} 4/, /server closed/],
    writes: ['model-repository/fashion/config.json'],
  },
  'custom-training-loop': {
    args: ['--epochs', '2', '--limit', '1000'],
    expect: [/epoch 1: loss \d\.\d{4}, val_accuracy 0\.\d{4}/, /resume from the training checkpoint/, /ran epoch \d/, /epoch 2: learning rate [\d.e-]+, test accuracy/],
    writes: ['training-run/training.ckpt', 'training-run/best.onnx', 'training-run/looped.onnx'],
  },
};

describe('examples/', () => {
  let dir: string;
  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'kiln-examples-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('every example has a run here (cifar10-tutorial has its own test)', () => {
    const examples = readdirSync(SOURCE_EXAMPLES).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();
    assert.deepEqual(examples, ['cifar10-tutorial', 'train-and-save', ...Object.keys(EXAMPLES)].sort());
  });

  it('a failing example fails the run, with its output', async () => {
    const broken = path.join(dir, 'broken.mjs');
    writeFileSync(broken, "console.log('started');\nthrow new Error('this example is broken on purpose');\n");
    await assert.rejects(runExample(broken, [], dir), /broken\.mjs {2}failed \(exit 1\):\nstarted\n[\s\S]*this example is broken on purpose/);
  });

  describe('on the model train-and-save writes', { concurrency: 2 }, () => {
    before(async () => {
      const out = await runExample(path.join(DIST_EXAMPLES, 'train-and-save.js'), QUICK, dir);
      assert.match(out, /1000 training images of 10 classes/);
      assert.match(out, /Total params: 56,714/);
      assert.match(out, /test accuracy 0\.\d{4}, macro F1 0\.\d{4}/);
      assert.match(out, /saved fashion-cnn\.onnx/);
      assert.ok((await loadModel(path.join(dir, 'fashion-cnn.onnx'))) instanceof Sequential);
    });

    for (const [name, { args, expect, writes }] of Object.entries(EXAMPLES)) {
      it(name, async () => {
        const out = await runExample(path.join(DIST_EXAMPLES, `${name}.js`), args, dir);
        for (const pattern of expect) assert.match(out, pattern);
        for (const file of writes ?? []) assert.ok(existsSync(path.join(dir, file)), `${name} wrote ${file}`);
      });
    }
  });
});
