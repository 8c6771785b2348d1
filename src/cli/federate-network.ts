/**
 * `kiln federate serve` and `kiln federate join`: the coordinator and the client of a real federation,
 * each one library call (kiln.federated.serve / join) plus flags and printed lines. `kiln federate`
 * (federate.ts) dispatches here by its first word.
 */
import { promises as fs } from 'node:fs';
import { KilnError } from '../errors.js';
import { serve } from '../federated/coordinator/serve.js';
import type { RoundSummary } from '../federated/coordinator/rounds.js';
import { join } from '../federated/client/join.js';
import type { ExamplePrivacyOptions } from '../federated/example-privacy.js';
import { STRATEGY_NAMES } from '../federated/strategies/index.js';
import { numberOption, stringOption, type OptionSpec, type ParsedArgs } from './args.js';

/** The flags of `kiln federate serve`. */
export const FEDERATE_SERVE_OPTIONS: OptionSpec[] = [
  { name: 'model', type: 'string', description: 'serve: the starting model (.onnx Kiln trains)' },
  { name: 'tokens', type: 'string', description: "serve: the clients' tokens file, one 'client-id token' per line (tokens of at least 16 characters)" },
  { name: 'rounds', type: 'number', integer: true, min: 1, description: 'federated rounds (a resumed run continues up to this many; default 20)' },
  { name: 'clients-per-round', type: 'number', integer: true, min: 1, description: 'serve: clients sampled per round (default 4)' },
  { name: 'min-clients', type: 'number', integer: true, min: 1, description: 'serve: fewest updates a round aggregates once --round-timeout has passed (default: --clients-per-round)' },
  { name: 'round-timeout', type: 'number', min: 0.001, description: 'serve: seconds a round (and each secure-aggregation phase) waits for its clients (default 600)' },
  { name: 'checkpoint-dir', type: 'string', description: 'serve: where the round checkpoint and global.onnx go (default <model>.federated/); a killed coordinator resumes from it' },
  { name: 'out', type: 'string', description: 'serve: the global model written after every round (default <checkpoint-dir>/global.onnx)' },
  { name: 'secure-aggregation', type: 'boolean', description: 'serve: secure aggregation (Bonawitz et al. 2017): the coordinator sees only the sum of the updates' },
  { name: 'threshold', type: 'number', integer: true, min: 2, description: "serve: secure aggregation's t: shares that rebuild a dropped client's masks, fewest survivors (default: a majority of the cohort)" },
  { name: 'port', type: 'number', integer: true, min: 0, max: 65535, description: 'serve: port (0: any free port; default 8600)' },
  { name: 'host', type: 'string', description: "serve: interface to listen on (default 127.0.0.1; '0.0.0.0' for all)" },
  { name: 'tls-cert', type: 'string', description: 'serve: HTTPS with this certificate chain (PEM file); join: a client certificate for mutual TLS' },
  { name: 'tls-key', type: 'string', description: "the certificate's private key (PEM file)" },
  { name: 'tls-client-ca', type: 'string', description: 'serve: mutual TLS: require client certificates signed by this CA (PEM file)' },
  { name: 'log-level', type: 'string', description: 'serve: JSON log level on stderr: fatal, error, warn, info, debug, silent (default warn)' },
];

/** The flags of `kiln federate join`. */
export const FEDERATE_JOIN_OPTIONS: OptionSpec[] = [
  { name: 'token', type: 'string', description: "join: this client's bearer token (or env KILN_FEDERATE_TOKEN)" },
  { name: 'tls-ca', type: 'string', description: 'join: trust this CA (PEM file) for an https:// coordinator' },
  { name: 'retry-timeout', type: 'number', min: 0, description: 'join: seconds to keep retrying an unreachable coordinator (default 120)' },
];

/** The privacy flags a client takes (example-level DP of its own examples). */
const JOIN_PRIVACY_FLAGS = ['dp-unit', 'dp-epsilon', 'dp-noise-multiplier', 'dp-delta', 'dp-clip'];

/** The DP unit the flags ask for: 'client' (DP-FedAvg, the default) or 'example' (DP-SGD on clients). */
export function dpUnit(options: ParsedArgs['options'], action: string): 'client' | 'example' {
  const unit = stringOption(options, 'dp-unit') ?? 'client';
  if (unit !== 'client' && unit !== 'example') throw new KilnError('INVALID_ARGUMENT', `kiln federate ${action}: --dp-unit must be 'client' (DP-FedAvg) or 'example' (DP-SGD on every client), got '${unit}'`);
  return unit;
}

/** Example-level privacy from the flags (--dp-epsilon or --dp-noise-multiplier, --dp-clip, --dp-delta), when --dp-unit example. */
export function examplePrivacyFlags(options: ParsedArgs['options'], action: string): ExamplePrivacyOptions | undefined {
  const epsilon = numberOption(options, 'dp-epsilon');
  const sigma = numberOption(options, 'dp-noise-multiplier');
  if (dpUnit(options, action) === 'client') {
    if (sigma !== undefined) throw new KilnError('INVALID_ARGUMENT', `kiln federate ${action}: --dp-noise-multiplier is for --dp-unit example; DP-FedAvg (client unit) is planned to --dp-epsilon`);
    return undefined;
  }
  if (epsilon === undefined && sigma === undefined) throw new KilnError('INVALID_ARGUMENT', `kiln federate ${action}: --dp-unit example needs --dp-epsilon (the budget) or --dp-noise-multiplier`);
  return { unit: 'example', l2NormClip: Number(options['dp-clip']), delta: Number(options['dp-delta']), ...(epsilon !== undefined ? { targetEpsilon: epsilon } : {}), ...(sigma !== undefined ? { noiseMultiplier: sigma } : {}) };
}

function refuseOthers(action: string, options: ParsedArgs['options'], allowed: string[], defaults: Set<string>): void {
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined || allowed.includes(name) || defaults.has(name)) continue;
    throw new KilnError('INVALID_ARGUMENT', `kiln federate ${action}: --${name} is not an option of ${action}`);
  }
}

function summaryLine(s: RoundSummary, rounds: number): string {
  const loss = Number.isNaN(s.meanLoss) ? 'client losses hidden (secure aggregation)' : `mean client loss ${s.meanLoss.toFixed(4)}`;
  const rejected = s.rejected.length ? `; dropped ${s.rejected.map((r) => `${r.client} (${r.reason})`).join(', ')}` : '';
  const eps = s.epsilon !== undefined ? `  ε ${s.epsilon.toFixed(2)}` : '';
  return `Round ${s.round}/${rounds}: aggregated ${s.aggregated.length} updates (${s.aggregated.join(', ')}; ${s.numExamples} examples), ${loss}${eps}${s.attempts > 1 ? `, after ${s.attempts} attempts` : ''}${rejected}`;
}

/**
 * `kiln federate serve`: runs a coordinator until the last round is saved. The strategy flags
 * (--strategy, --proximal-mu, --server-lr, ...) and the local-training flags are simulate's.
 */
export async function runFederateServe(args: ParsedArgs, out: (line: string) => void, defaults: Set<string>, shared: string[]): Promise<number> {
  const { options } = args;
  refuseOthers('serve', options, [...FEDERATE_SERVE_OPTIONS.map((o) => o.name), ...shared], defaults);
  const model = stringOption(options, 'model');
  const tokens = stringOption(options, 'tokens');
  if (!model || !tokens) throw new KilnError('INVALID_ARGUMENT', 'kiln federate serve: give --model m.onnx and --tokens tokens.txt');
  const [cert, key, clientCa] = ['tls-cert', 'tls-key', 'tls-client-ca'].map((o) => stringOption(options, o));
  if ((cert === undefined) !== (key === undefined) || (clientCa !== undefined && cert === undefined)) throw new KilnError('INVALID_ARGUMENT', 'kiln federate serve: TLS needs --tls-cert and --tls-key together (and --tls-client-ca only with them)');
  if (dpUnit(options, 'serve') === 'example') {
    throw new KilnError('INVALID_ARGUMENT', 'kiln federate serve: example-level DP runs on the clients, each with its own budget: kiln federate join URL ... --dp-unit example --dp-epsilon E (serve --dp-epsilon is DP-FedAvg, client-level)');
  }
  const serverLr = numberOption(options, 'server-lr');
  const timeout = numberOption(options, 'round-timeout');
  const rounds = numberOption(options, 'rounds') ?? 20;
  const strategy = String(options.strategy ?? 'fedavg');
  if (!(STRATEGY_NAMES as readonly string[]).includes(strategy)) throw new KilnError('INVALID_ARGUMENT', `kiln federate serve: --strategy must be one of ${STRATEGY_NAMES.join(', ')}, got '${strategy}'`);
  const handle = await serve({
    model,
    tokens,
    rounds,
    clientsPerRound: numberOption(options, 'clients-per-round'),
    minClients: numberOption(options, 'min-clients'),
    roundTimeoutMs: timeout !== undefined ? timeout * 1000 : undefined,
    checkpointDir: stringOption(options, 'checkpoint-dir'),
    out: stringOption(options, 'out'),
    strategy,
    strategySettings: {
      proximalMu: numberOption(options, 'proximal-mu'),
      serverMomentum: numberOption(options, 'server-momentum'),
      tau: numberOption(options, 'tau'),
      ...(serverLr !== undefined ? { serverLearningRate: serverLr, eta: serverLr } : {}),
    },
    localEpochs: numberOption(options, 'local-epochs'),
    localOptimizer: stringOption(options, 'local-optimizer'),
    learningRate: numberOption(options, 'lr'),
    batchSize: numberOption(options, 'batch-size'),
    seed: numberOption(options, 'seed'),
    secureAggregation: options['secure-aggregation'] === true,
    threshold: numberOption(options, 'threshold'),
    dpEpsilon: numberOption(options, 'dp-epsilon'),
    dpDelta: numberOption(options, 'dp-delta'),
    dpClipNorm: numberOption(options, 'dp-clip'),
    port: numberOption(options, 'port'),
    host: stringOption(options, 'host'),
    ...(cert !== undefined ? { tls: { cert, key: key!, ...(clientCa !== undefined ? { clientCa } : {}) } } : {}),
    logLevel: stringOption(options, 'log-level') ?? 'warn',
    onRound: (s) => out(summaryLine(s, rounds)),
  });
  out(`Coordinator listening on ${handle.url} (model ${handle.modelId}${handle.resumedFrom > 0 ? `, resumed after round ${handle.resumedFrom}` : ''})`);
  const stop = () => {
    out('Interrupted: the last finished round is in the checkpoint; run the same command to resume.');
    process.exit(130);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const result = await handle.finished;
    out(`Done: ${result.rounds} rounds; global model ${result.out}, checkpoint ${result.checkpoint}`);
  } finally {
    await handle.close();
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  return 0;
}

/** `kiln federate join URL --dataset ... --token T`: a client, until the coordinator says done. */
export async function runFederateJoin(args: ParsedArgs, out: (line: string) => void, defaults: Set<string>): Promise<number> {
  const { positionals, options } = args;
  refuseOthers('join', options, [...FEDERATE_JOIN_OPTIONS.map((o) => o.name), 'dataset', 'tls-cert', 'tls-key', ...JOIN_PRIVACY_FLAGS], defaults);
  if ((options['dp-epsilon'] !== undefined || options['dp-noise-multiplier'] !== undefined) && dpUnit(options, 'join') !== 'example') {
    throw new KilnError('INVALID_ARGUMENT', "kiln federate join: a client protects its own examples: give --dp-unit example (client-level DP-FedAvg is the coordinator's, kiln federate serve --dp-epsilon)");
  }
  const privacy = examplePrivacyFlags(options, 'join');
  const url = positionals[1];
  if (!url || positionals.length > 2) throw new KilnError('INVALID_ARGUMENT', `kiln federate join: give the coordinator's URL once (kiln federate join http://host:8600 --dataset ... --token ...)${positionals.length > 2 ? `, got ${positionals.slice(1).join(' ')}` : ''}`);
  const token = stringOption(options, 'token') ?? (process.env.KILN_FEDERATE_TOKEN || undefined);
  if (!token) throw new KilnError('INVALID_ARGUMENT', 'kiln federate join: give --token (or env KILN_FEDERATE_TOKEN)');
  const dataset = stringOption(options, 'dataset');
  if (!dataset) throw new KilnError('INVALID_ARGUMENT', 'kiln federate join: give --dataset (a name or a path to the local data)');
  const read = async (flag: string) => {
    const file = stringOption(options, flag);
    if (file === undefined) return undefined;
    try {
      return await fs.readFile(file);
    } catch (err) {
      throw new KilnError('FILE_NOT_FOUND', `kiln federate join: --${flag} '${file}' cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
  };
  const [ca, cert, key] = [await read('tls-ca'), await read('tls-cert'), await read('tls-key')];
  const retry = numberOption(options, 'retry-timeout');
  out(`Joining ${url} with local data ${dataset}${privacy ? `, example-level DP (DP-SGD) at ${privacy.targetEpsilon !== undefined ? `ε ≤ ${privacy.targetEpsilon} over the planned rounds` : `σ = ${privacy.noiseMultiplier}`}, δ = ${privacy.delta}, clip ${privacy.l2NormClip}` : ''}`);
  const result = await join(url, {
    dataset,
    token,
    ...(ca || cert || key ? { tls: { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) } } : {}),
    retryTimeoutMs: retry !== undefined ? retry * 1000 : undefined,
    ...(privacy ? { privacy } : {}),
    onRound: (r) => out(`Round ${r.round}: trained on ${r.numExamples} local examples, loss ${r.loss.toFixed(4)}; sent ${r.secure ? 'a masked update' : 'the weights'}${r.epsilon !== undefined ? `; DP-SGD σ = ${r.noiseMultiplier!.toFixed(3)}, ε ${r.epsilon.toFixed(2)} spent` : ''}`),
    onEvent: (m) => out(`note: ${m}`),
  });
  out(`Done: the coordinator finished after round ${result.finalRound}; this client (${result.client}) trained in ${result.roundsTrained} rounds`);
  return 0;
}
