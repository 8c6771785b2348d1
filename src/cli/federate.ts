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
import { examplePrivacyFlags, FEDERATE_JOIN_OPTIONS, FEDERATE_SERVE_OPTIONS, runFederateJoin, runFederateServe } from './federate-network.js';

/** One round as `kiln federate simulate` prints it. */
export function formatRound(r: RoundResult, rounds: number): string {
  const eps = r.epsilon !== undefined ? `  ε ${r.epsilon.toFixed(2)}` : '';
  return `Round ${String(r.round).padStart(String(rounds).length)}/${rounds}  test accuracy ${(100 * r.accuracy).toFixed(2)}%  test loss ${r.loss.toFixed(4)}  client loss ${r.clientLoss.toFixed(4)}  (${r.clients.length} clients, ${r.seconds.toFixed(1)} s)${eps}`;
}

/** One value, or the range 'lo–hi' when clients differ (sampling rates, steps). */
function formatRange(values: number[], digits: number): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? lo.toFixed(digits) : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`;
}

/** serve's and join's own flags (those simulate also has, like --rounds, are simulate's). */
const NETWORK_OPTIONS = [...FEDERATE_SERVE_OPTIONS, ...FEDERATE_JOIN_OPTIONS].filter((o, i, all) => o.name !== 'rounds' && o.name !== 'clients-per-round' && all.findIndex((x) => x.name === o.name) === i);
/** simulate's flags a coordinator takes too: the strategy, local training, DP-FedAvg, the seed, rounds and clients per round. */
const SHARED_WITH_SERVE = ['rounds', 'clients-per-round', 'strategy', 'proximal-mu', 'server-lr', 'server-momentum', 'tau', 'local-epochs', 'local-optimizer', 'lr', 'batch-size', 'dp-unit', 'dp-epsilon', 'dp-delta', 'dp-clip', 'seed'];

export const federateCommand: Command = {
  name: 'federate',
  summary: 'Federated learning: simulate clients holding shards of a data set, or run a coordinator (serve) and clients (join) that train where the data is; FedAvg, FedProx, FedAvgM, FedAdam, DP-FedAvg, secure aggregation',
  usage:
    'kiln federate simulate --dataset fashion-mnist --clients 10 [--non-iid 2] --rounds 20 [--strategy fedavg|fedprox|fedavgm|fedadam] [--dp-epsilon 8 [--dp-unit client|example]] [--report out.html]' +
    ' | kiln federate serve --model m.onnx --tokens tokens.txt [--rounds 20] [--clients-per-round 4] [--min-clients 3] [--port 8600] [--secure-aggregation] [--checkpoint-dir D] [--round-timeout S]' +
    ' | kiln federate join URL --dataset <local data> --token T [--tls-ca ca.pem] [--dp-unit example --dp-epsilon 8]',
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
    { name: 'dp-unit', type: 'string', description: "what DP protects: 'client' (DP-FedAvg: clip and noise client updates at the coordinator; default) or 'example' (DP-SGD on every client, ε per client over its local steps; join's only unit)" },
    { name: 'dp-epsilon', type: 'number', description: 'the ε the whole run may spend (RDP accountant): per client (client unit) or per example (example unit)' },
    { name: 'dp-noise-multiplier', type: 'number', description: 'example unit: DP-SGD noise multiplier σ instead of --dp-epsilon (ε is still counted and printed)' },
    { name: 'dp-delta', type: 'number', description: 'δ of the (ε, δ) guarantee', default: 1e-5 },
    { name: 'dp-clip', type: 'number', description: "clip norm C: of each client's update (client unit) or of each example's gradient (example unit)", default: 1 },
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
    const privacy = examplePrivacyFlags(options, 'simulate');
    const epsilon = privacy ? undefined : numberOption(options, 'dp-epsilon');
    const seed = Number(options.seed);
    const rounds = Number(options.rounds);
    const nonIid = numberOption(options, 'non-iid');
    const split = nonIid !== undefined ? `non-IID (${nonIid} classes per client)` : 'IID';
    out(`Simulating ${options.clients} clients on ${options.dataset} (${split}), ${rounds} rounds of ${strategy}${epsilon !== undefined ? ` with DP-FedAvg at ε = ${epsilon}, δ = ${options['dp-delta']}` : ''}${privacy ? ` with example-level DP (DP-SGD on every client) at ${privacy.targetEpsilon !== undefined ? `ε = ${privacy.targetEpsilon}` : `σ = ${privacy.noiseMultiplier}`}, δ = ${privacy.delta}` : ''}`);
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
      ...(privacy ? { privacy } : {}),
      onStart: ({ privacy: p }) => {
        if (p) out(`Example-level DP: every client trains with DP-SGD, clip norm ${p.l2NormClip} per example, noise multiplier σ = ${p.noiseMultiplier.toFixed(3)}, sampling rate q = ${formatRange(p.samplingRates, 4)}, ${formatRange(p.stepsPerRound, 0)} steps per round; ε below is the largest client's`);
      },
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
    out(`Final test accuracy after ${result.rounds.length} rounds: ${(100 * last.accuracy).toFixed(2)}%${last.epsilon !== undefined ? ` (${privacy ? 'example-level ' : ''}ε = ${last.epsilon.toFixed(2)} at δ = ${options['dp-delta']})` : ''}`);
    const report = stringOption(options, 'report');
    if (report) {
      const p = result.privacy;
      const privacyNote = p
        ? [`Example-level DP: DP-SGD on every client (clip ${p.l2NormClip}, σ = ${p.noiseMultiplier.toFixed(3)}, q = ${formatRange(p.samplingRates, 4)}, ${formatRange(p.stepsPerRound, 0)} steps per round); ε is the largest client's at δ = ${p.delta}, over all its local steps.`]
        : epsilon !== undefined
          ? [`DP-FedAvg (client-level): ε at δ = ${options['dp-delta']} over the rounds run.`]
          : [];
      const file = await writeFederatedReport(report, [result], { notes: [`kiln federate simulate on ${options.dataset}: ${options.clients} clients, ${split}, ${strategy}, local ${options['local-optimizer']} for ${options['local-epochs']} epoch(s) per round.`, ...privacyNote] });
      out(`Report: ${file}`);
    }
    return 0;
  },
};
