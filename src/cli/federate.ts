/**
 * `kiln federate`: `simulate` runs federated training on this machine (flags in, accuracy per round
 * and a report out); `serve` and `join` run a real coordinator and client (federate-network.ts).
 */
import { KilnError } from '../errors.js';
import { dpFedAvg } from '../federated/privacy.js';
import { simulate, type RoundResult } from '../federated/simulate.js';
import { STRATEGY_NAMES } from '../federated/strategies/index.js';
import { writeFederatedReport } from '../report/federated.js';
import { numberOption, stringOption } from './args.js';
import type { Command } from './command.js';
import { FEDERATE_JOIN_OPTIONS, FEDERATE_SERVE_OPTIONS, runFederateJoin, runFederateServe } from './federate-network.js';

/** One round as `kiln federate simulate` prints it. */
export function formatRound(r: RoundResult, rounds: number): string {
  const eps = r.epsilon !== undefined ? `  ε ${r.epsilon.toFixed(2)}` : '';
  return `Round ${String(r.round).padStart(String(rounds).length)}/${rounds}  test accuracy ${(100 * r.accuracy).toFixed(2)}%  test loss ${r.loss.toFixed(4)}  client loss ${r.clientLoss.toFixed(4)}  (${r.clients.length} clients, ${r.seconds.toFixed(1)} s)${eps}`;
}

/** serve's and join's own flags (those simulate also has, like --rounds, are simulate's). */
const NETWORK_OPTIONS = [...FEDERATE_SERVE_OPTIONS, ...FEDERATE_JOIN_OPTIONS].filter((o, i, all) => o.name !== 'rounds' && o.name !== 'clients-per-round' && all.findIndex((x) => x.name === o.name) === i);
/** simulate's flags a coordinator takes too: the strategy, local training, DP-FedAvg, the seed, rounds and clients per round. */
const SHARED_WITH_SERVE = ['rounds', 'clients-per-round', 'strategy', 'proximal-mu', 'server-lr', 'server-momentum', 'tau', 'local-epochs', 'local-optimizer', 'lr', 'batch-size', 'dp-epsilon', 'dp-delta', 'dp-clip', 'seed'];

export const federateCommand: Command = {
  name: 'federate',
  summary: 'Federated learning: simulate clients holding shards of a data set, or run a coordinator (serve) and clients (join) that train where the data is; FedAvg, FedProx, FedAvgM, FedAdam, DP-FedAvg, secure aggregation',
  usage:
    'kiln federate simulate --dataset fashion-mnist --clients 10 [--non-iid 2] --rounds 20 [--strategy fedavg|fedprox|fedavgm|fedadam] [--dp-epsilon 8] [--report out.html]' +
    ' | kiln federate serve --model m.onnx --tokens tokens.txt [--rounds 20] [--clients-per-round 4] [--min-clients 3] [--port 8600] [--secure-aggregation] [--checkpoint-dir D] [--round-timeout S]' +
    ' | kiln federate join URL --dataset <local data> --token T [--tls-ca ca.pem]',
  options: [
    { name: 'dataset', type: 'string', description: 'data set name or path', default: 'fashion-mnist' },
    { name: 'clients', type: 'number', integer: true, min: 1, description: 'simulated clients', default: 10 },
    { name: 'non-iid', type: 'number', integer: true, min: 1, description: 'classes per client (2: half of class c and half of class c+1); without it an IID split' },
    { name: 'rounds', type: 'number', integer: true, min: 1, description: 'federated rounds', default: 20 },
    { name: 'clients-per-round', type: 'number', integer: true, min: 1, description: 'clients sampled each round (default: all)' },
    { name: 'strategy', type: 'string', description: STRATEGY_NAMES.join(', '), default: 'fedavg' },
    { name: 'proximal-mu', type: 'number', min: 0, description: "FedProx's μ", default: 0.01 },
    { name: 'server-lr', type: 'number', description: 'server learning rate (FedAvgM η, default 1; FedAdam η, default 0.1)' },
    { name: 'server-momentum', type: 'number', min: 0, description: "FedAvgM's momentum", default: 0.9 },
    { name: 'tau', type: 'number', description: "FedAdam's adaptivity τ", default: 1e-9 },
    { name: 'local-epochs', type: 'number', integer: true, min: 1, description: 'local epochs per round', default: 1 },
    { name: 'local-optimizer', type: 'string', description: 'sgd, adam, adamw, rmsprop or adagrad (state reset every round)', default: 'sgd' },
    { name: 'lr', type: 'number', description: "local learning rate (default: the optimizer's Keras default)" },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'local examples per step', default: 32 },
    { name: 'dp-epsilon', type: 'number', description: 'DP-FedAvg: the ε the whole run may spend (client-level, RDP accountant)' },
    { name: 'dp-delta', type: 'number', description: 'DP-FedAvg: δ', default: 1e-5 },
    { name: 'dp-clip', type: 'number', description: "DP-FedAvg: clip norm C of each client's update", default: 1 },
    { name: 'train-limit', type: 'number', integer: true, min: 1, description: 'use only the first N training examples (short runs)' },
    { name: 'test-limit', type: 'number', integer: true, min: 1, description: 'evaluate on only the first N test examples' },
    { name: 'report', type: 'string', description: 'write an HTML report with the accuracy per round' },
    { name: 'seed', type: 'number', integer: true, description: 'seed for the split, sampling, shuffling, noise and the model', default: 42 },
    ...NETWORK_OPTIONS,
  ],
  async run(args, out) {
    const { positionals, options } = args;
    const [action, ...extra] = positionals;
    const defaults = new Set(federateCommand.options.filter((o) => o.default !== undefined).map((o) => o.name));
    if (action === 'serve') {
      if (extra.length > 0) throw new KilnError('INVALID_ARGUMENT', `kiln federate serve: unexpected ${extra.join(' ')} (give the model with --model)`);
      return runFederateServe(args, out, defaults, SHARED_WITH_SERVE);
    }
    if (action === 'join') return runFederateJoin(args, out, defaults);
    for (const o of NETWORK_OPTIONS) if (options[o.name] !== undefined) throw new KilnError('INVALID_ARGUMENT', `kiln federate simulate: --${o.name} is an option of serve or join`);
    if (action !== 'simulate' || extra.length > 0) {
      throw new KilnError('INVALID_ARGUMENT', `kiln federate: expected the action 'simulate', 'serve' or 'join', found ${action === undefined ? 'none' : `'${[action, ...extra].join(' ')}'`} (usage: ${federateCommand.usage})`);
    }
    const strategy = String(options.strategy);
    const serverLr = numberOption(options, 'server-lr');
    const epsilon = numberOption(options, 'dp-epsilon');
    const seed = Number(options.seed);
    const rounds = Number(options.rounds);
    const nonIid = numberOption(options, 'non-iid');
    const split = nonIid !== undefined ? `non-IID (${nonIid} classes per client)` : 'IID';
    out(`Simulating ${options.clients} clients on ${options.dataset} (${split}), ${rounds} rounds of ${strategy}${epsilon !== undefined ? ` with DP-FedAvg at ε = ${epsilon}, δ = ${options['dp-delta']}` : ''}`);
    const result = await simulate({
      dataset: String(options.dataset),
      clients: Number(options.clients),
      nonIid,
      rounds,
      clientsPerRound: numberOption(options, 'clients-per-round'),
      strategy,
      strategySettings: {
        proximalMu: Number(options['proximal-mu']),
        serverMomentum: Number(options['server-momentum']),
        tau: Number(options.tau),
        ...(serverLr !== undefined ? { serverLearningRate: serverLr, eta: serverLr } : {}),
      },
      localEpochs: Number(options['local-epochs']),
      localOptimizer: String(options['local-optimizer']),
      learningRate: numberOption(options, 'lr'),
      batchSize: Number(options['batch-size']),
      trainLimit: numberOption(options, 'train-limit'),
      testLimit: numberOption(options, 'test-limit'),
      seed,
      wrapStrategy:
        epsilon === undefined
          ? undefined
          : (inner, plan) => {
              const dp = dpFedAvg({ strategy: inner, targetEpsilon: epsilon, delta: Number(options['dp-delta']), clipNorm: Number(options['dp-clip']), ...plan });
              out(`DP-FedAvg: clip norm ${dp.clipNorm}, noise multiplier σ = ${dp.noiseMultiplier.toFixed(3)} (noise std σC = ${(dp.noiseMultiplier * dp.clipNorm).toFixed(3)} on the sum of ${plan.clientsPerRound} updates), sampling rate ${dp.samplingRate}`);
              return dp;
            },
      onRound: (r) => out(formatRound(r, rounds)),
    });
    const last = result.rounds.at(-1)!;
    out(`Final test accuracy after ${result.rounds.length} rounds: ${(100 * last.accuracy).toFixed(2)}%${last.epsilon !== undefined ? ` (ε = ${last.epsilon.toFixed(2)} at δ = ${options['dp-delta']})` : ''}`);
    const report = stringOption(options, 'report');
    if (report) {
      const file = await writeFederatedReport(report, [result], { notes: [`kiln federate simulate on ${options.dataset}: ${options.clients} clients, ${split}, ${strategy}, local ${options['local-optimizer']} for ${options['local-epochs']} epoch(s) per round.`] });
      out(`Report: ${file}`);
    }
    return 0;
  },
};
