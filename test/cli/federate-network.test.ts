/** `kiln federate serve` / `join`'s argument handling, through main(): what each action refuses, and its help. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runMain } from './helpers.js';

describe('kiln federate serve and join: arguments', () => {
  it('refuses a missing action, missing model/tokens, token or URL, and flags of the other action', async () => {
    const cases: [string[], RegExp][] = [
      [['federate'], /expected the action 'simulate', 'serve' or 'join'/],
      [['federate', 'serve', '--tokens', 't.txt'], /give --model m\.onnx and --tokens tokens\.txt/],
      [['federate', 'serve', '--model', 'm.onnx', '--tokens', 't.txt', '--non-iid', '2'], /--non-iid is not an option of serve/],
      [['federate', 'join', 'http://127.0.0.1:1', '--dataset', 'embedded'], /give --token/],
      [['federate', 'join', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded'], /give the coordinator's URL once/],
      [['federate', 'join', 'http://127.0.0.1:1', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded', '--min-clients', '2'], /--min-clients is not an option of join/],
      [['federate', 'simulate', '--secure-aggregation'], /--secure-aggregation is an option of serve or join/],
      [['federate', 'serve', '--model', 'no-such.onnx', '--tokens', 'no-such.txt'], /tokens file 'no-such\.txt' cannot be read/],
      // Example-level DP is the clients': serve refuses it, join needs the unit said, bad budgets are named.
      [['federate', 'serve', '--model', 'm.onnx', '--tokens', 't.txt', '--dp-unit', 'example', '--dp-epsilon', '8'], /example-level DP runs on the clients/],
      [['federate', 'serve', '--model', 'm.onnx', '--tokens', 't.txt', '--dp-noise-multiplier', '1'], /--dp-noise-multiplier is not an option of serve/],
      [['federate', 'join', 'http://127.0.0.1:1', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded', '--dp-epsilon', '8'], /a client protects its own examples: give --dp-unit example/],
      [['federate', 'join', 'http://127.0.0.1:1', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded', '--dp-unit', 'example'], /--dp-unit example needs --dp-epsilon .* or --dp-noise-multiplier/],
      [['federate', 'join', 'http://127.0.0.1:1', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded', '--dp-unit', 'example', '--dp-epsilon', '0'], /targetEpsilon must be a finite number > 0, got 0/],
      [['federate', 'join', 'http://127.0.0.1:1', '--token', 'aaaaaaaaaaaaaaaaaaaa', '--dataset', 'embedded', '--dp-unit', 'example', '--dp-epsilon', '8', '--dp-delta', '0.5'], /delta must be in \(0, 1\/N\)/],
      [['federate', 'simulate', '--dp-unit', 'examples', '--dp-epsilon', '8'], /--dp-unit must be 'client' \(DP-FedAvg\) or 'example'/],
      [['federate', 'simulate', '--dp-noise-multiplier', '1'], /--dp-noise-multiplier is for --dp-unit example/],
      [['federate', 'simulate', '--dp-unit', 'example', '--dp-epsilon', '8', '--dp-noise-multiplier', '1', '--dataset', 'embedded'], /exactly one of targetEpsilon and noiseMultiplier, got both/],
      [['federate', 'simulate', '--dp-unit', 'example', '--dp-epsilon', '8', '--strategy', 'fedprox', '--dataset', 'embedded', '--train-limit', '100'], /cannot train with FedProx's proximal term/],
    ];
    for (const [argv, pattern] of cases) {
      const { code, err } = await runMain(argv);
      assert.equal(code, 1, argv.join(' '));
      assert.match(err, pattern, argv.join(' '));
    }
  });

  it('explains every flag in --help', async () => {
    const { code, out } = await runMain(['federate', '--help']);
    assert.equal(code, 0);
    for (const flag of ['--model', '--tokens', '--clients-per-round', '--min-clients', '--round-timeout', '--checkpoint-dir', '--secure-aggregation', '--token', '--tls-ca', '--dp-epsilon', '--dp-unit', '--dp-noise-multiplier']) assert.ok(out.includes(flag), flag);
  });
});
