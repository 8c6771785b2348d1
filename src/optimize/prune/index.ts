/**
 * Pruning: unstructured magnitude pruning with TF-MOT schedules, and structured filter/unit removal —
 * of Kiln layer models and of imported graphs (structured: through their channel dependency groups).
 */
export { prune, type PruneOptions } from './prune.js';
export { magnitudePrune, defaultSchedule, scheduleFromChoice, type ScheduleChoice, type MagnitudePruneOptions, type PruneResult } from './magnitude.js';
export { structuredPrune, removeFilters, filterScores, type StructuredPruneArgs, type StructuredPruneOptions, type FilterCriterion } from './structured.js';
export { constantSparsity, polynomialDecay, scheduleFromConfig, type PruningSchedule, type ConstantSparsityArgs, type PolynomialDecayArgs } from './schedules.js';
export { magnitudeMasks, mByNMask, prunedCount, selectTargets, type PruneTarget } from './masks.js';
export { selectGraphTargets, type GraphWeightSelection } from './graph-weights.js';
export { measureLatency, weightSparsity, type PruneReport, type ModelSnapshot, type LayerPruneReport, type WeightSparsity, type SnapshotOptions, type LatencyOptions } from './report.js';
export type { FineTuneArgs } from './fine-tune.js';
export { graphStructuredPrune, groupScores, type GraphStructuredArgs, type GraphStructuredPruneOptions, type GraphPruneReport, type GraphPruneResult, type GraphGroupReport, type GraphCriterion } from './graph-structured.js';
export { analyzeGraph, measureFacts, FOLLOWED_OPS, type GraphAnalysis, type GraphFacts, type ChannelGroup, type GroupMember, type GroupKind, type Blocker } from './graph-groups.js';
export { taylorGradients, type TaylorData } from './taylor.js';
export type { AxisAtoms } from './axis-atoms.js';
