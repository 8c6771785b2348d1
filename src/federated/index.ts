// Owns the federated layer's public API (`kiln.federated`): weights as clients send them, local
// training, the strategies, DP-FedAvg, example-level DP on clients and the one-machine simulation.
export * from './weights.js';
export { trainLocally, prepareLocalTraining, proximalPenalty, GLOBAL_WEIGHTS_INPUT, type LocalDataset, type LocalTrainingOptions, type LocalTrainingResult } from './local-training.js';
export * from './strategies/index.js';
export { clipUpdate, type ClippedUpdate, DpFedAvg, dpFedAvg, type DpFedAvgPlan, secureNormal, seededNormal, type DpFedAvgArgs, type NormalSource, type PrivacyAccountant } from './privacy.js';
export { iidSplit, nonIidSplit, type ClientShards } from './split.js';
export { simulate, type ExamplePrivacyRun, type RoundResult, type SimulateOptions, type SimulationResult } from './simulate.js';
export { checkExamplePrivacy, ClientPrivacy, exampleNoiseMultiplier, localSteps, planClientPrivacy, type ClientTrainingShape, type ExamplePrivacyOptions, type LocalSteps } from './example-privacy.js';
export { serve, type FederatedServeOptions, type CoordinatorHandle, type FederatedRunResult } from './coordinator/serve.js';
export type { RoundSummary, RoundRejection } from './coordinator/rounds.js';
export { join, type JoinOptions, type JoinResult, type JoinedRound } from './client/join.js';
export { RefusedError } from './client/connection.js';
