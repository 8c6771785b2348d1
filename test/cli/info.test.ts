/**
 * `kiln` CLI: help, `kiln info` (and `--trainable`) on Kiln and foreign models, error exit codes, and the real bin script
 * run as a child process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runMain } from './helpers.js';
import { Graph } from '../../src/graph/graph.js';
import { modelToProto } from '../../src/graph/onnx-io.js';
import { encodeModel } from '../../src/graph/proto.js';
import { Tensor } from '../../src/tensor.js';
import { writeWrapPadModel } from '../train/helpers.js';
import { layers, sequential } from '../../src/index.js';
import { makeTempDir } from '../model/helpers.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));

let temp: Awaited<ReturnType<typeof makeTempDir>>;
let modelFile: string;
let foreignFile: string;

before(async () => {
  temp = await makeTempDir('kiln-cli-test-');
  modelFile = join(temp.dir, 'small cnn.onnx');
  const model = sequential({
    layers: [
      layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [8, 8, 1] }),
      layers.maxPooling2d({ poolSize: 2 }),
      layers.flatten(),
      layers.dense({ units: 3, activation: 'softmax' }),
    ],
  });
  await model.save(modelFile);
  foreignFile = join(temp.dir, 'identity.onnx');
  const info = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'batch' }, { dimValue: 4 }] } } } });
  await writeFile(
    foreignFile,
    encodeModel({
      irVersion: 8,
      producerName: 'pytorch',
      producerVersion: '2.1.0',
      opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'g', node: [{ opType: 'Sigmoid', input: ['x'], output: ['y'] }], input: [info('x')], output: [info('y')] },
    }),
  );
});
after(() => temp.remove());

describe('kiln (main)', () => {
  it('--help lists the commands and exits 0', async () => {
    for (const argv of [['--help'], ['-h'], []]) {
      const { code, out } = await runMain(argv);
      assert.equal(code, 0);
      assert.match(out, /Usage: kiln <command>/);
      assert.match(out, /^Commands:$/m);
      assert.match(out, /^\s+info\s+Show the inputs, outputs/m);
    }
  });

  it('an unknown command exits 2 and names the command and the known ones', async () => {
    const { code, out, err } = await runMain(['nope']);
    assert.equal(code, 2);
    assert.equal(out, '');
    assert.match(err, /unknown command 'nope'/);
    assert.match(err, /Commands: .*info/);
  });

  it('info --help shows its usage and options', async () => {
    const { code, out } = await runMain(['info', '--help']);
    assert.equal(code, 0);
    assert.match(out, /Usage: kiln info <model\.onnx>/);
    assert.match(out, /--json/);
  });
});

describe('kiln info', () => {
  it('prints a Kiln model’s inputs, outputs, operators and parameters', async () => {
    const { code, out, err } = await runMain(['info', modelFile]);
    assert.equal(code, 0, err);
    assert.equal(err, '');
    const params = 3 * 3 * 1 * 4 + 4 + 36 * 3 + 3; // conv 40, dense 111
    assert.match(out, new RegExp(`^Model: ${modelFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(out, /Producer: kiln 0\.1\.0/);
    assert.match(out, new RegExp(`Parameters: ${params}\\b`));
    assert.match(out, /^input\s+input\s+float32\s+\[N, 8, 8, 1\]$/m);
    assert.match(out, /^output\s+output\s+float32\s+\[N, 3\]$/m);
    for (const op of ['Conv', 'MaxPool', 'Flatten', 'Gemm', 'Softmax', 'Relu', 'Transpose']) {
      assert.match(out, new RegExp(`^${op}\\s+\\d+$`, 'm'), `operator ${op} listed`);
    }
    assert.match(out, /^conv2d\/kernel\s+\[4, 1, 3, 3\]\s+36\s+\d+\.\d%$/m);
    assert.match(out, /^dense\/kernel\s+\[36, 3\]\s+108\s+\d+\.\d%$/m);
    assert.match(out, /^total\s+151\s+/m);
  });

  it('describes a foreign model too', async () => {
    const { code, out } = await runMain(['info', foreignFile]);
    assert.equal(code, 0);
    assert.match(out, /Producer: pytorch 2\.1\.0\s+IR version: 8\s+Opsets: ai\.onnx 17/);
    assert.match(out, /^input\s+x\s+float32\s+\[batch, 4\]$/m);
    assert.match(out, /^Sigmoid\s+1$/m);
    assert.match(out, /Parameters: 0\b/);
  });

  it('--json prints the model description as JSON', async () => {
    const { code, out } = await runMain(['info', modelFile, '--json']);
    assert.equal(code, 0);
    const d = JSON.parse(out) as { inputs: { name: string; shape: unknown[] }[]; ops: Record<string, number>; parameters: number };
    assert.deepEqual(d.inputs, [{ name: 'input', dtype: 'float32', shape: ['N', 8, 8, 1] }]);
    assert.equal(d.ops.Conv, 1);
    assert.equal(d.parameters, 40 + 111);
  });

  it('a missing file exits 1 with an error naming the file', async () => {
    const missing = join(temp.dir, 'missing.onnx');
    const { code, out, err } = await runMain(['info', missing]);
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.ok(err.includes(missing), err);
    assert.match(err, /FILE_NOT_FOUND/);
  });

  it('a file that is not ONNX exits 1 with NOT_ONNX', async () => {
    const text = join(temp.dir, 'readme.onnx');
    await writeFile(text, 'hello\n');
    const { code, err } = await runMain(['info', text]);
    assert.equal(code, 1);
    assert.match(err, /NOT_ONNX/);
    assert.ok(err.includes(text));
  });

  it('without a file, or with an unknown option, exits 1 explaining what is expected', async () => {
    const none = await runMain(['info']);
    assert.equal(none.code, 1);
    assert.match(none.err, /give a model file/);
    const bad = await runMain(['info', modelFile, '--colour']);
    assert.equal(bad.code, 1);
    assert.match(bad.err, /unknown option --colour/);
    assert.match(bad.err, /--json/);
  });
});

describe('kiln info --trainable', () => {
  it('builds the gradient graph: a rule that covers only part of its op makes it "no", naming the node and why', async () => {
    const info = await runMain(['info', '--trainable', await writeWrapPadModel(temp.dir)]);
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /Trainable: no — node 'the_wrap' \(Pad\): Pad gradient: mode 'wrap' is not supported/);
  });

  it('judges a model whose output is no class vector (a regression, a squeezed logit [N]) on its nodes alone', async () => {
    const g = new Graph('regression');
    const x = g.input('x', 'float32', ['batch', 4]);
    const w = g.initializer('w', new Tensor(new Float32Array(4).fill(0.1), [4, 1], 'float32'));
    g.output(g.op1('Reshape', [g.op1('MatMul', [x, w]), g.int64s([-1], 'shape')]), 'y');
    const file = join(temp.dir, 'regression.onnx');
    await writeFile(file, encodeModel(modelToProto(g)));
    const info = await runMain(['info', '--trainable', file]);
    assert.equal(info.code, 0, info.err);
    assert.match(info.out, /Trainable: yes \(4 trainable parameters/);
  });
});

describe('the kiln bin script', () => {
  const run = promisify(execFile);

  it('is executable, as `npx kiln` runs it directly (the build sets the mode; tsc does not)', async () => {
    const { stdout } = await run(BIN, ['--help']);
    assert.match(stdout, /Usage: kiln/);
  });

  it('`kiln info <file>` exits 0 and prints the description', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'info', modelFile]);
    assert.match(stdout, /^Model: .*small cnn\.onnx$/m);
    assert.match(stdout, /^input\s+input\s+float32\s+\[N, 8, 8, 1\]$/m);
    assert.match(stdout, /^Conv\s+1$/m);
  });

  it('`kiln info <missing>` exits 1 and names the file on stderr', async () => {
    const missing = join(temp.dir, 'gone.onnx');
    await assert.rejects(run(process.execPath, [BIN, 'info', missing]), (e: { code?: number; stderr?: string; stdout?: string }) => {
      assert.equal(e.code, 1);
      assert.ok(e.stderr?.includes(missing), e.stderr);
      assert.equal(e.stdout, '');
      return true;
    });
  });

  it('goes on quietly when its reader closes the pipe (`kiln info m.onnx | head -3`), and still writes what it makes', async () => {
    const closed = async (args: string[]) => {
      const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.destroy(); // the reader is gone before the first line is written
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      assert.equal(stderr, '', 'no EPIPE stack trace');
      assert.equal(code, 0);
    };
    await closed(['info', modelFile]);
    // kiln prune prints what it starts before it writes the pruned model: the file is still written.
    const fashion = join(temp.dir, 'fashion cnn.onnx');
    await sequential({
      layers: [layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }), layers.flatten(), layers.dense({ units: 10, activation: 'softmax' })],
    }).save(fashion);
    const pruned = join(temp.dir, 'pruned-while-piped.onnx');
    await closed(['prune', fashion, '--sparsity', '0.5', '--layers', 'conv2d', '--epochs', '0', '--dataset', 'embedded', '--out', pruned]);
    assert.ok(existsSync(pruned), 'the pruned model was saved');
  });

  it('`kiln nope` exits 2', async () => {
    await assert.rejects(run(process.execPath, [BIN, 'nope']), (e: { code?: number }) => {
      assert.equal(e.code, 2);
      return true;
    });
  });
});
