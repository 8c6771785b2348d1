import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../../src/errors.js';
import { parseArgs, type OptionSpec } from '../../src/cli/args.js';
import type { Command } from '../../src/cli/command.js';
import { benchCommand } from '../../src/cli/bench.js';
import { demoCommand } from '../../src/cli/demo.js';
import { distillCommand } from '../../src/cli/distill.js';
import { pruneCommand } from '../../src/cli/prune.js';
import { quantizeCommand } from '../../src/cli/quantize.js';
import { reportCommand } from '../../src/cli/report.js';
import { serveCommand } from '../../src/cli/serve.js';
import { trainCommand } from '../../src/cli/train.js';
import { runMain } from './helpers.js';

const SPECS: OptionSpec[] = [
  { name: 'seed', type: 'number', integer: true, description: 'any whole number', default: 42 },
  { name: 'rate', type: 'number', min: 0, description: 'any number from 0' },
  { name: 'limit', type: 'number', integer: true, min: 10, description: 'a whole number from 10' },
  { name: 'floor', type: 'number', integer: true, min: 1, description: 'a default below min', default: 0 },
  { name: 'scale', type: 'number', description: 'any finite number' },
  { name: 'bits', type: 'number', integer: true, min: 2, max: 8, description: 'a whole number from 2 to 8' },
  { name: 'share', type: 'number', max: 1, description: 'any number up to 1' },
];

const parse = (argv: string[]) => parseArgs(argv, SPECS, 'test').options;

function rejects(argv: string[], message: string): void {
  assert.throws(
    () => parse(argv),
    (err: unknown) => err instanceof KilnError && err.code === 'INVALID_ARGUMENT' && err.message === message,
    `${argv.join(' ')} should fail with: ${message}`,
  );
}

describe('parseArgs: integer and min on number options', () => {
  it('integer: a fraction is rejected; any whole number, negative included, passes', () => {
    rejects(['--seed', '1.5'], "kiln test: --seed must be an integer, got '1.5'");
    rejects(['--seed', '1e-3'], "kiln test: --seed must be an integer, got '1e-3'");
    assert.equal(parse(['--seed', '7']).seed, 7);
    assert.equal(parse(['--seed', '-3']).seed, -3);
  });

  it('min: a value below it is rejected; the minimum itself and fractions above pass', () => {
    rejects(['--rate', '-1'], "kiln test: --rate must be at least 0, got '-1'");
    rejects(['--rate', '-0.001'], "kiln test: --rate must be at least 0, got '-0.001'");
    assert.equal(parse(['--rate', '0']).rate, 0);
    assert.equal(parse(['--rate', '0.5']).rate, 0.5);
  });

  it('integer and min: one message whether the value is too small, fractional or both', () => {
    const message = (v: string) => `kiln test: --limit must be an integer of at least 10, got '${v}'`;
    rejects(['--limit', '9'], message('9'));
    rejects(['--limit', '10.5'], message('10.5'));
    rejects(['--limit', '-2.5'], message('-2.5'));
    assert.equal(parse(['--limit', '10']).limit, 10);
    assert.equal(parse(['--limit', '300']).limit, 300);
  });

  it('max: a value above it is rejected, alone or with integer and min; the bounds themselves pass', () => {
    rejects(['--bits', '9'], "kiln test: --bits must be an integer from 2 to 8, got '9'");
    rejects(['--bits', '1'], "kiln test: --bits must be an integer from 2 to 8, got '1'");
    rejects(['--bits', '4.5'], "kiln test: --bits must be an integer from 2 to 8, got '4.5'");
    assert.equal(parse(['--bits', '2']).bits, 2);
    assert.equal(parse(['--bits', '8']).bits, 8);
    rejects(['--share', '1.01'], "kiln test: --share must be at most 1, got '1.01'");
    assert.equal(parse(['--share', '-3']).share, -3);
  });

  it('checks --name=value as it checks --name value', () => {
    rejects(['--limit=9'], "kiln test: --limit must be an integer of at least 10, got '9'");
    assert.equal(parse(['--limit=12']).limit, 12);
  });

  it('leaves defaults as declared: they are not re-checked, and an absent option stays absent', () => {
    const options = parse([]);
    assert.equal(options.seed, 42);
    assert.equal(options.floor, 0);
    assert.equal(options.limit, undefined);
    assert.ok(!('limit' in options));
  });

  it('without integer or min, a number option takes any finite number; non-numbers fail as before', () => {
    assert.equal(parse(['--scale', '-2.5']).scale, -2.5);
    rejects(['--scale', 'abc'], "kiln test: --scale expects a number, got 'abc'");
    rejects(['--limit', 'ten'], "kiln test: --limit expects a number, got 'ten'");
  });
});

describe('parseArgs: options whose value is optional', () => {
  const specs: OptionSpec[] = [
    { name: 'structured', type: 'number', valueOptional: true, description: 'a ratio, or alone' },
    { name: 'ratio', type: 'number', description: 'a ratio' },
  ];
  const parseOptional = (argv: string[]) => parseArgs(argv, specs, 'test').options;
  it('stand alone before another option or at the end (true), take a value otherwise', () => {
    assert.deepEqual(parseOptional(['--structured', '--ratio', '0.5']), { structured: true, ratio: 0.5 });
    assert.deepEqual(parseOptional(['m.onnx', '--structured']), { structured: true });
    assert.deepEqual(parseOptional(['--structured', '0.25']), { structured: 0.25 });
    assert.deepEqual(parseOptional(['--structured=0.3']), { structured: 0.3 });
    assert.throws(() => parseOptional(['--structured', 'half']), /--structured expects a number, got 'half'/);
  });
});

describe("the commands' integer options", () => {
  // [command, option, a value it refuses, the rule the message states, a boundary value it accepts]
  const cases: [Command, string, string, string, string][] = [
    [benchCommand, 'limit', '0', 'an integer of at least 1', '1'],
    [benchCommand, 'warmup', '-1', 'an integer of at least 0', '0'],
    [benchCommand, 'repetitions', '0', 'an integer of at least 1', '1'],
    [benchCommand, 'latency-runs', '2.5', 'an integer of at least 1', '1'],
    [benchCommand, 'batch-size', '0', 'an integer of at least 1', '1'],
    [reportCommand, 'limit', '0.5', 'an integer of at least 1', '1'],
    [demoCommand, 'limit', '9', 'an integer of at least 10', '10'],
    [demoCommand, 'test-limit', '0', 'an integer of at least 1', '1'],
    [demoCommand, 'epochs', '0', 'an integer of at least 1', '1'],
    [demoCommand, 'fine-tune-epochs', '0', 'an integer of at least 1', '1'],
    [demoCommand, 'distill-epochs', '1.5', 'an integer of at least 1', '1'],
    [pruneCommand, 'epochs', '-1', 'an integer of at least 0', '0'],
    [pruneCommand, 'batch-size', '0', 'an integer of at least 1', '1'],
    [pruneCommand, 'iterations', '0', 'an integer of at least 1', '1'],
    [pruneCommand, 'begin-step', '-1', 'an integer of at least 0', '0'],
    [pruneCommand, 'end-step', '-2', 'an integer of at least -1', '-1'],
    [pruneCommand, 'frequency', '0', 'an integer of at least 1', '1'],
    [pruneCommand, 'latency-batch', '-1', 'an integer of at least 0', '0'],
    [pruneCommand, 'seed', '0.5', 'an integer', '-1'],
    [quantizeCommand, 'fine-tune-samples', '-1', 'an integer of at least 0', '0'],
    [quantizeCommand, 'calibration-samples', '0', 'an integer of at least 1', '1'],
    [quantizeCommand, 'weight-bits', '1', 'an integer from 2 to 8', '2'],
    [quantizeCommand, 'weight-bits', '9', 'an integer from 2 to 8', '8'],
    [quantizeCommand, 'min-conv-reduction', '-1', 'an integer of at least 0', '0'],
    [quantizeCommand, 'epochs', '0', 'an integer of at least 1', '1'],
    [quantizeCommand, 'batch-size', '0', 'an integer of at least 1', '1'],
    [trainCommand, 'crop-padding', '-1', 'an integer of at least 0', '0'],
    [trainCommand, 'cutout', '2.5', 'an integer of at least 0', '0'],
    [trainCommand, 'epochs', '0', 'an integer of at least 1', '1'],
    [trainCommand, 'batch-size', '0', 'an integer of at least 1', '1'],
    [trainCommand, 'seed', '1.5', 'an integer', '-1'],
    [distillCommand, 'epochs', '0', 'an integer of at least 1', '1'],
    [distillCommand, 'batch-size', '0', 'an integer of at least 1', '1'],
    [distillCommand, 'cutout', '-1', 'an integer of at least 0', '0'],
    [serveCommand, 'port', '1.5', 'an integer from 0 to 65535', '0'],
    [serveCommand, 'port', '65536', 'an integer from 0 to 65535', '65535'],
    [serveCommand, 'max-batch-size', '-1', 'an integer of at least 0', '0'],
    [serveCommand, 'max-queue-size', '0', 'an integer of at least 1', '1'],
    [serveCommand, 'instances', '0', 'an integer of at least 1', '1'],
    [serveCommand, 'intra-op-threads', '0', 'an integer of at least 1', '1'],
    [serveCommand, 'body-limit', '0', 'an integer of at least 1', '1'],
  ];

  for (const [command, option, bad, rule, ok] of cases) {
    it(`kiln ${command.name} --${option}: refuses ${bad}, accepts ${ok}`, () => {
      assert.throws(
        () => parseArgs([`--${option}`, bad], command.options, command.name),
        (err: unknown) => err instanceof KilnError && err.code === 'INVALID_ARGUMENT' && err.message === `kiln ${command.name}: --${option} must be ${rule}, got '${bad}'`,
      );
      assert.equal(parseArgs([`--${option}`, ok], command.options, command.name).options[option], Number(ok));
    });
  }

  it('main() reports the bad value, naming the command once, and exits 1 before the command runs', async () => {
    // Without model files bench would fail on those instead: the option is refused first.
    const { code, out, err } = await runMain(['bench', '--limit', '0']);
    assert.equal(code, 1);
    assert.equal(out, '');
    assert.equal(err, "kiln bench: error [INVALID_ARGUMENT]: --limit must be an integer of at least 1, got '0'");
  });
});
