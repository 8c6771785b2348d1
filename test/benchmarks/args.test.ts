/**
 * bench/args.ts, the one flag parser of the scripts under bench/: strict (an unknown flag, a flag
 * without its value, a number that is not one all throw, naming the flag), defaults, number lists,
 * bare values, arguments after `--`; and every bench script uses it, exiting 2 on a misspelled flag
 * before doing any work.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { BenchArgsError, parseBenchArgs, type FlagSpec } from '../../bench/args.js';

const FLAGS = {
  epochs: { type: 'number', default: 2 },
  seeds: { type: 'numbers', default: [42] },
  dir: { type: 'string' },
  augment: { type: 'string', bare: 'crop,flip' },
  cosine: { type: 'boolean' },
} satisfies Record<string, FlagSpec>;

function rejects(argv: string[], message: RegExp, options = {}): void {
  assert.throws(() => parseBenchArgs(FLAGS, argv, options), (e: unknown) => e instanceof BenchArgsError && message.test(e.message), `${argv.join(' ')} → ${message}`);
}

describe('parseBenchArgs', () => {
  it('gives the defaults when no flag is given', () => {
    assert.deepEqual(parseBenchArgs(FLAGS, []), { epochs: 2, seeds: [42], dir: undefined, augment: undefined, cosine: false, rest: [] });
  });

  it('reads numbers, number lists, strings and booleans, with or without =', () => {
    assert.deepEqual(parseBenchArgs(FLAGS, ['--epochs', '100', '--seeds=4,5,6', '--dir', '/data', '--cosine']), {
      epochs: 100,
      seeds: [4, 5, 6],
      dir: '/data',
      augment: undefined,
      cosine: true,
      rest: [],
    });
  });

  it('rejects an unknown flag, naming it', () => {
    rejects(['--epochs', '2', '--seed', '4,5,6'], /Unknown option '--seed'/);
    rejects(['--bogus'], /'--bogus'/);
    rejects(['-x'], /'-x'/);
  });

  it('rejects a flag without its value, a number that is not one, and a stray argument', () => {
    rejects(['--epochs'], /--epochs/);
    rejects(['--epochs', 'two'], /--epochs needs a number, got 'two'/);
    rejects(['--seeds', '1,,3'], /--seeds needs a number, got ''/);
    rejects(['--cosine=yes'], /--cosine/);
    rejects(['100'], /'100'/);
  });

  it("takes a bare flag's value when it comes without one", () => {
    assert.equal((parseBenchArgs(FLAGS, ['--augment', '--cosine']) as { augment: string }).augment, 'crop,flip');
    assert.equal((parseBenchArgs(FLAGS, ['--augment']) as { augment: string }).augment, 'crop,flip');
    assert.equal((parseBenchArgs(FLAGS, ['--augment', 'crop']) as { augment: string }).augment, 'crop');
  });

  it("hands on what follows '--' only where the script asks for it", () => {
    assert.deepEqual((parseBenchArgs(FLAGS, ['--epochs', '1', '--', '--batch-size', '64'], { rest: true }) as { rest: string[] }).rest, ['--batch-size', '64']);
    rejects(['--', '--batch-size', '64'], /unexpected arguments after '--': --batch-size 64/);
    rejects(['stray', '--', '--batch-size', '64'], /'stray'/, { rest: true });
  });

  it("answers 'help' to --help", () => {
    assert.equal(parseBenchArgs(FLAGS, ['--help']), 'help');
  });
});

describe('the bench scripts', () => {
  const benchDir = fileURLToPath(new URL('../../bench/', import.meta.url));
  const SCRIPTS = ['any-onnx/finetune-text.js', 'any-onnx/finetune.js', 'any-onnx/load-time.js', 'any-onnx/torchvision.js', 'any-onnx/transfer.js', 'browser/train.js', 'distill/any-onnx.js', 'distill/fashion.js', 'federated/simulate.js', 'float16/compute.js', 'prune/any-onnx-structured.js', 'prune/fashion.js', 'quantize/any-onnx.js', 'quantize/run.js', 'serve/image-decode.js', 'serve/request-cost.js', 'serve/run.js', 'train/cli-fashion.js', 'train/dp-sgd.js', 'train/fashion-accuracy.js', 'train/maxpool-ties.js', 'train/profile.js', 'train/throughput.js', 'tune/optimize.js', 'tune/parallel.js', 'tune/search.js'];
  const HELPERS = ['any-onnx/common.js', 'args.js', 'distill/seeds.js', 'federated/starting-point.js', 'ort-timing.js', 'quantize/common.js', 'serve/fastapi.js', 'serve/grpc-floor.js', 'serve/grpc-load.js', 'serve/http-floor.js', 'serve/load.js', 'serve/model.js', 'serve/process-cpu.js', 'serve/test-images.js', 'train/common.js'];
  const run = promisify(execFile);

  it('are all listed here, as a script that takes flags or as a helper', () => {
    const files = readdirSync(benchDir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.split(path.sep).join('/'))
      .sort();
    assert.deepEqual(files, [...SCRIPTS, ...HELPERS].sort());
  });

  for (const script of SCRIPTS) {
    it(`${script} exits 2 naming a misspelled flag, and 0 for --help`, async () => {
      const file = path.join(benchDir, script);
      const [misspelled, help] = await Promise.allSettled([run(process.execPath, [file, '--seedz', '4,5,6'], { timeout: 60_000 }), run(process.execPath, [file, '--help'], { timeout: 60_000 })]);
      assert.equal(misspelled.status, 'rejected', 'a misspelled flag must fail');
      const error = (misspelled as PromiseRejectedResult).reason as { code?: number; stderr?: string };
      assert.equal(error.code, 2, `exit code, stderr: ${error.stderr}`);
      assert.match(error.stderr ?? '', /Unknown option '--seedz'/);
      assert.equal(help.status, 'fulfilled', `--help: ${(help as PromiseRejectedResult).reason}`);
      assert.match((help as PromiseFulfilledResult<{ stdout: string }>).value.stdout, /^usage: node dist\/bench\//);
    });
  }
});
