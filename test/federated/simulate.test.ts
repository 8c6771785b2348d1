/**
 * The one-machine simulation (src/federated/simulate.ts) end to end on the embedded Fashion-MNIST
 * subset: two rounds of FedAvg over three IID clients lift the global model well above chance, and
 * every round reports its accuracy and clients; bad settings are refused before any training.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { federated } from '../../src/index.js';
import { KilnError } from '../../src/errors.js';

describe('simulate', () => {
  it('two FedAvg rounds on a small IID subset beat chance (10 classes) by far', async () => {
    const seen: number[] = [];
    const r = await federated.simulate({ dataset: 'embedded', clients: 3, rounds: 2, trainLimit: 1500, testLimit: 500, localOptimizer: 'adam', learningRate: 1e-3, seed: 1, onRound: (x) => seen.push(x.round) });
    assert.deepEqual(seen, [1, 2]);
    assert.deepEqual(r.clientSizes, [500, 500, 500]);
    assert.deepEqual(r.rounds[0]!.clients, [0, 1, 2]);
    assert.ok(r.rounds[1]!.accuracy > 0.4, `accuracy after 2 rounds ${r.rounds[1]!.accuracy}`);
    assert.equal(r.setting, 'fedavg iid');
  });

  it('refuses impossible settings', async () => {
    await assert.rejects(federated.simulate({ dataset: 'embedded', clients: 3, clientsPerRound: 4 }), KilnError);
    await assert.rejects(federated.simulate({ dataset: 'embedded', clients: 0 }), KilnError);
    await assert.rejects(federated.simulate({ dataset: 'embedded', strategy: 'fedsgd' }), (e: unknown) => e instanceof KilnError && /unknown strategy 'fedsgd'/.test(e.message));
  });
});
