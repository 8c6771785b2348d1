/** `kiln federate`: federated learning; `serve` runs a coordinator, `join` a client (federate-network.ts). */
import { KilnError } from '../errors.js';
import { STRATEGY_NAMES } from '../federated/strategies/index.js';
import type { Command } from './command.js';
import { FEDERATE_JOIN_OPTIONS, FEDERATE_SERVE_OPTIONS, runFederateJoin, runFederateServe } from './federate-network.js';
import type { OptionSpec } from './args.js';

/** Strategy, privacy and local-training flags the coordinator takes. */
const TRAINING_OPTIONS: OptionSpec[] = [
  { name: 'dataset', type: 'string', description: 'join: the local data (a name or path, as kiln train --dataset); it never leaves the client' },
  { name: 'strategy', type: 'string', description: STRATEGY_NAMES.join(', '), default: 'fedavg' },
  { name: 'proximal-mu', type: 'number', min: 0, description: "FedProx's μ (default 0.01)" },
  { name: 'server-lr', type: 'number', description: 'server learning rate (FedAvgM η, default 1; FedAdam η, default 0.1)' },
  { name: 'server-momentum', type: 'number', min: 0, description: "FedAvgM's momentum (default 0.9)" },
  { name: 'tau', type: 'number', description: "FedAdam's adaptivity τ (default 1e-9)" },
  { name: 'local-epochs', type: 'number', integer: true, min: 1, description: 'local epochs per round (default 1)' },
  { name: 'local-optimizer', type: 'string', description: 'sgd, adam, adamw, rmsprop or adagrad, state reset every round (default sgd)' },
  { name: 'lr', type: 'number', description: "local learning rate (default: the optimizer's Keras default)" },
  { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'local examples per step (default 32)' },
  { name: 'dp-epsilon', type: 'number', description: 'DP-FedAvg: the ε the whole run may spend (client-level, RDP accountant)' },
  { name: 'dp-delta', type: 'number', description: 'DP-FedAvg: δ (default 1e-5)' },
  { name: 'dp-clip', type: 'number', description: "DP-FedAvg: clip norm C of each client's update (default 1)" },
  { name: 'seed', type: 'number', integer: true, description: 'seed for sampling and the clients\' shuffling (default 42)' },
];
const SHARED = TRAINING_OPTIONS.filter((o) => o.name !== 'dataset').map((o) => o.name);

export const federateCommand: Command = {
  name: 'federate',
  summary: 'Federated learning: a coordinator (serve) and clients (join) that train where the data is, with FedAvg, FedProx, FedAvgM, FedAdam, DP-FedAvg and secure aggregation',
  usage: 'kiln federate serve --model m.onnx --tokens tokens.txt [--rounds 20] [--clients-per-round 4] [--min-clients 3] [--port 8600] [--strategy fedavg] [--secure-aggregation] [--checkpoint-dir D] [--round-timeout S] [--dp-epsilon E] | kiln federate join URL --dataset <local data> --token T [--tls-ca ca.pem]',
  options: [...FEDERATE_SERVE_OPTIONS, ...FEDERATE_JOIN_OPTIONS.filter((o) => !FEDERATE_SERVE_OPTIONS.some((s) => s.name === o.name)), ...TRAINING_OPTIONS],
  async run(args, out) {
    const action = args.positionals[0];
    const defaults = new Set(federateCommand.options.filter((o) => o.default !== undefined).map((o) => o.name));
    if (action === 'serve') {
      if (args.positionals.length > 1) throw new KilnError('INVALID_ARGUMENT', `kiln federate serve: unexpected ${args.positionals.slice(1).join(' ')} (give the model with --model)`);
      return runFederateServe(args, out, defaults, SHARED);
    }
    if (action === 'join') return runFederateJoin(args, out, defaults);
    throw new KilnError('INVALID_ARGUMENT', `kiln federate: expected the action 'serve' or 'join', found ${action === undefined ? 'none' : `'${action}'`} (usage: ${federateCommand.usage})`);
  },
};
