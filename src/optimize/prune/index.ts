/** Pruning: unstructured magnitude pruning with TF-MOT schedules (Kiln layer models and imported graphs), and structured filter/unit removal. */
export { prune, type PruneOptions } from './prune.js';
export { magnitudePrune, defaultSchedule, scheduleFromChoice, type ScheduleChoice, type MagnitudePruneOptions, type PruneResult } from './magnitude.js';
export { structuredPrune, removeFilters, filterScores, type StructuredPruneArgs, type StructuredPruneOptions, type FilterCriterion } from './structured.js';
export { constantSparsity, polynomialDecay, scheduleFromConfig, type PruningSchedule, type ConstantSparsityArgs, type PolynomialDecayArgs } from './schedules.js';
export { magnitudeMasks, mByNMask, prunedCount, selectTargets, type PruneTarget } from './masks.js';
export { selectGraphTargets, type GraphWeightSelection } from './graph-weights.js';
export { measureLatency, weightSparsity, type PruneReport, type ModelSnapshot, type LayerPruneReport, type WeightSparsity, type SnapshotOptions } from './report.js';
export type { FineTuneArgs } from './fine-tune.js';
