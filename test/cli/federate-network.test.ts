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
    for (const flag of ['--model', '--tokens', '--clients-per-round', '--min-clients', '--round-timeout', '--checkpoint-dir', '--secure-aggregation', '--token', '--tls-ca', '--dp-epsilon']) assert.ok(out.includes(flag), flag);
  });
});
