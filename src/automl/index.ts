/** `kiln optimize`: the smallest or fastest compression of a model within an accuracy budget, and the Pareto front. */
export { optimizeModel, type OptimizableModel, type OptimizeOptions, type OptimizeResult, type OptimizeObjective, type Candidate } from './optimize.js';
export { allConfigs, configName, searchOrder, type CompressionConfig, type SearchChoices, type Shrink, type QuantizationChoice } from './candidates.js';
export { paretoFront, dominates, type MeasuredPoint } from './pareto.js';
