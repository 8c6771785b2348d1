// Owns `kiln federate simulate`'s library side: deals a data set out to simulated clients (IID or
// label-skewed), runs rounds of sampling, local training and aggregation on this machine, and
// measures the global model's test accuracy after every round. Clients train one after another
// through one model (one compiled step in one runtime worker), each from the round's global weights.
// With example-level privacy each client trains with DP-SGD and keeps its own accountant; a round's
// ε is the largest over the clients (their data sets are disjoint).
import { KilnError } from '../errors.js';
import { loadDataset } from '../data/by-name.js';
import type { ImageDataset } from '../data/types.js';
import { tutorialCnn } from '../layers/presets.js';
import { Random } from '../random.js';
import type { Tensor } from '../tensor.js';
import type { TrainableModel } from '../train/model.js';
import { Sequential } from '../train/sequential.js';
import { ClientPrivacy, checkExamplePrivacy, exampleNoiseMultiplier, localSteps, refuseProximalTerm, type ExamplePrivacyOptions } from './example-privacy.js';
import { prepareLocalTraining, trainLocally, type LocalDataset } from './local-training.js';
import { strategyByName, type StrategySettings } from './strategies/index.js';
import type { ClientUpdate, Strategy } from './strategies/strategy.js';
import { DpFedAvg } from './privacy.js';
import { iidSplit, nonIidSplit } from './split.js';
import { getWeights, setWeights, type ModelWeights } from './weights.js';

/** What `simulate` runs. */
export interface SimulateOptions {
  /** A data set or its name for `loadDataset` (default 'fashion-mnist'). */
  dataset?: string | ImageDataset;
  /** Simulated clients (default 10). */
  clients?: number;
  /** Classes per client for a label-skewed split (2: half of class c and half of c+1); absent: IID. */
  nonIid?: number;
  /** Federated rounds (default 20). */
  rounds?: number;
  /** Clients sampled per round, without replacement (default: all). */
  clientsPerRound?: number;
  /** A strategy or its name: 'fedavg' (default), 'fedprox', 'fedavgm', 'fedadam'. */
  strategy?: string | Strategy;
  /** Settings for a strategy given by name (μ, server learning rate, momentum, τ, ...). */
  strategySettings?: StrategySettings;
  /** Local epochs per round (default 1). */
  localEpochs?: number;
  /** Local optimizer: 'sgd' (default) or 'adam' etc.; its state starts fresh every round. */
  localOptimizer?: string;
  /** Local learning rate (default: the optimizer's default). */
  learningRate?: number;
  /** Local batch size (default 32). */
  batchSize?: number;
  /**
   * Wraps the strategy after the split and model are made (e.g. DP-FedAvg, which needs the number of
   * clients and rounds): given the strategy, returns the one to run.
   */
  wrapStrategy?: (strategy: Strategy, plan: { clients: number; clientsPerRound: number; rounds: number }) => Strategy;
  /**
   * Example-level DP on clients: every client trains its local epochs with DP-SGD (σ calibrated so
   * that a client training in every planned round spends at most `targetEpsilon`); not together with
   * DP-FedAvg (client-level) nor FedProx.
   */
  privacy?: ExamplePrivacyOptions;
  /** Use only the first `trainLimit` training examples (short runs, tests). */
  trainLimit?: number;
  /** Evaluate on only the first `testLimit` test examples. */
  testLimit?: number;
  /** The model to train (default: the tutorial CNN for the data set's images, seeded by `seed`). */
  model?: TrainableModel;
  /** Seed for the split, client sampling, shuffling and the default model (default 42). */
  seed?: number;
  /** Called once the split and the privacy plan are made, before round 1. */
  onStart?: (info: { setting: string; clientSizes: number[]; privacy?: ExamplePrivacyRun }) => void;
  /** Called after every round. */
  onRound?: (round: RoundResult) => void;
}

/** One round's outcome. */
export interface RoundResult {
  /** 1-based round number. */
  round: number;
  /** The global model's accuracy on the test data after the round. */
  accuracy: number;
  /** Its loss on the test data. */
  loss: number;
  /** The sampled clients' mean last-epoch training loss. */
  clientLoss: number;
  /** The clients that trained this round. */
  clients: number[];
  /** ε spent so far: DP-FedAvg's (client-level), or with example-level privacy the largest client's. */
  epsilon?: number;
  /** Wall-clock seconds of the round (training and aggregation, not the evaluation). */
  seconds: number;
}

/** What `simulate` returns. */
export interface SimulationResult {
  /** A short name of the setting (e.g. 'fedavg non-iid 2'). */
  setting: string;
  /** Each round, in order. */
  rounds: RoundResult[];
  /** The final global weights. */
  weights: ModelWeights;
  /** Examples held by each client. */
  clientSizes: number[];
  /** Example-level privacy's settings, when it ran. */
  privacy?: ExamplePrivacyRun;
}

/** The DP-SGD settings every client of an example-level private simulation trained with. */
export interface ExamplePrivacyRun {
  /** 'example': the guarantee protects one training example. */
  unit: 'example';
  /** σ. */
  noiseMultiplier: number;
  /** C. */
  l2NormClip: number;
  /** δ. */
  delta: number;
  /** The ε σ was calibrated for (absent when σ was given). */
  targetEpsilon?: number;
  /** Each client's sampling rate q (batch size / its examples). */
  samplingRates: number[];
  /** Each client's DP-SGD steps per round. */
  stepsPerRound: number[];
}

/** The round's evaluation: test loss and accuracy of `weights`. */
async function evaluateGlobal(model: TrainableModel, weights: ModelWeights, test: LocalDataset): Promise<{ loss: number; accuracy: number }> {
  setWeights(model, weights);
  const r = await model.evaluate(test.x, test.y, { batchSize: 1000 });
  return { loss: r.loss!, accuracy: r.accuracy! };
}

function positiveInt(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 1) throw new KilnError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${v}`);
  return v;
}

/**
 * Simulates federated training on one machine: `clients` clients each hold a shard of the training
 * data; every round `clientsPerRound` of them (sampled) train locally from the global weights, the
 * strategy aggregates their weights, and the new global model is evaluated on the test data.
 */
export async function simulate(options: SimulateOptions = {}): Promise<SimulationResult> {
  const seed = options.seed ?? 42;
  const clients = positiveInt(options.clients ?? 10, 'clients');
  const rounds = positiveInt(options.rounds ?? 20, 'rounds');
  const clientsPerRound = positiveInt(options.clientsPerRound ?? clients, 'clientsPerRound');
  if (clientsPerRound > clients) throw new KilnError('INVALID_ARGUMENT', `clientsPerRound (${clientsPerRound}) exceeds the number of clients (${clients})`);
  const localEpochs = positiveInt(options.localEpochs ?? 1, 'localEpochs');
  const data = typeof options.dataset === 'object' ? options.dataset : await loadDataset(options.dataset ?? 'fashion-mnist');
  const trainN = Math.min(data.train.images.shape[0]!, options.trainLimit ?? Infinity);
  const testN = Math.min(data.test.images.shape[0]!, options.testLimit ?? Infinity);
  const trainX = data.train.images.slice(0, trainN);
  const trainY = data.train.labels.slice(0, trainN);
  const test = { x: data.test.images.slice(0, testN), y: data.test.labels.slice(0, testN) };
  const numClasses = data.classNames.length;
  const shards = options.nonIid !== undefined ? nonIidSplit(trainY.data as Int32Array, numClasses, clients, options.nonIid, seed) : iidSplit(trainN, clients, seed);
  const local: LocalDataset[] = shards.map((s) => ({ x: trainX.gather(s) as Tensor, y: trainY.gather(s) as Tensor }));

  let strategy = typeof options.strategy === 'object' ? options.strategy : strategyByName(options.strategy ?? 'fedavg', options.strategySettings);
  if (options.wrapStrategy) strategy = options.wrapStrategy(strategy, { clients, clientsPerRound, rounds });
  const batchSize = options.batchSize ?? 32;
  const privacy = options.privacy ? planPrivacy(options.privacy, strategy, shards.map((sh) => ({ examples: sh.length, batchSize, epochs: localEpochs })), rounds, trainN) : undefined;
  const model = options.model ?? new Sequential({ layers: tutorialCnn(data.train.images.shape.slice(1), numClasses), seed });
  const training = { epochs: localEpochs, batchSize, optimizer: options.localOptimizer ?? 'sgd', learningRate: options.learningRate, proximalMu: strategy.proximalMu ?? 0 };
  prepareLocalTraining(model, training);
  let global = getWeights(model);
  const sampler = new Random(seed + 1);
  const results: RoundResult[] = [];
  const setting = `${strategy.name}${privacy ? ' example-dp' : ''}${options.nonIid !== undefined ? ` non-iid ${options.nonIid}` : ' iid'}`;
  options.onStart?.({ setting, clientSizes: shards.map((sh) => sh.length), ...(privacy ? { privacy: privacy.run } : {}) });
  for (let round = 1; round <= rounds; round++) {
    const started = performance.now();
    const chosen = clientsPerRound === clients ? Array.from({ length: clients }, (_, i) => i) : Array.from(sampler.permutation(clients).subarray(0, clientsPerRound)).sort((a, b) => a - b);
    const updates: ClientUpdate[] = [];
    let lossSum = 0;
    for (const c of chosen) {
      const r = await trainLocally(model, global, local[c]!, { ...training, seed: seed * 1000 + round * clients + c, ...(privacy ? { privacy: privacy.clients[c]!.fitPrivacy() } : {}) });
      privacy?.clients[c]!.recordRound({ examples: shards[c]!.length, batchSize, epochs: localEpochs });
      updates.push({ weights: r.weights, numExamples: r.numExamples });
      lossSum += r.loss;
    }
    global = strategy.aggregate(global, updates, round);
    const seconds = (performance.now() - started) / 1000;
    const evaluation = await evaluateGlobal(model, global, test);
    const epsilon = privacy ? Math.max(...privacy.clients.map((p) => p.epsilon())) : (strategy as { epsilon?: () => number | undefined }).epsilon?.();
    const result: RoundResult = { round, accuracy: evaluation.accuracy, loss: evaluation.loss, clientLoss: lossSum / chosen.length, clients: chosen, seconds, ...(epsilon !== undefined ? { epsilon } : {}) };
    results.push(result);
    options.onRound?.(result);
  }
  return { setting, rounds: results, weights: global, clientSizes: shards.map((s) => s.length), ...(privacy ? { privacy: privacy.run } : {}) };
}

/** Checks example-level privacy against the run (one DP unit, no FedProx, δ < 1/N) and gives each client its accountant. */
function planPrivacy(options: ExamplePrivacyOptions, strategy: Strategy, shapes: { examples: number; batchSize: number; epochs: number }[], rounds: number, trainN: number): { clients: ClientPrivacy[]; run: ExamplePrivacyRun } {
  if (strategy instanceof DpFedAvg) {
    throw new KilnError('INVALID_ARGUMENT', `simulate: example-level privacy and DP-FedAvg (client-level, '${strategy.name}') at once; choose one unit of privacy`);
  }
  // Before any training, as trainLocally would refuse it in round 1.
  refuseProximalTerm(strategy.proximalMu ?? 0, 'simulate: ');
  const checked = checkExamplePrivacy(options, trainN);
  const empty = shapes.findIndex((s) => s.examples === 0);
  if (empty >= 0) throw new KilnError('INVALID_DATA', `simulate: client ${empty} holds no examples, and example-level privacy counts steps over each client's data`);
  const noiseMultiplier = exampleNoiseMultiplier(checked, shapes, rounds);
  const clients = shapes.map(() => new ClientPrivacy({ l2NormClip: checked.l2NormClip, noiseMultiplier, delta: checked.delta, targetEpsilon: checked.targetEpsilon }));
  const steps = shapes.map((s) => localSteps(s));
  return {
    clients,
    run: {
      unit: 'example',
      noiseMultiplier,
      l2NormClip: checked.l2NormClip,
      delta: checked.delta,
      ...(checked.targetEpsilon !== undefined ? { targetEpsilon: checked.targetEpsilon } : {}),
      samplingRates: steps.map((s) => s.samplingRate),
      stepsPerRound: steps.map((s) => s.steps),
    },
  };
}
