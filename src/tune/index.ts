/** Hyper-parameter search (`kiln.tuner`): search spaces, samplers (random, TPE), ASHA, the study journal. */
export { tune, type TuneOptions, type TuneResult, type TrialResult, type BuildResult, type Objective, type ObjectiveMetric } from './study.js';
export { SearchSpace, searchSpace, choice, int, float, logUniform, type ParamSpec, type ParamValue, type Params, type SpaceDefinition, type Condition } from './space.js';
export { parseSearchParameter, parseSearchSpace } from './search-syntax.js';
export { HyperParameters } from './hyper-parameters.js';
export { RandomSampler } from './samplers/random.js';
export { TpeSampler, type TpeOptions } from './samplers/tpe.js';
export type { Sampler, ObservedTrial, Direction } from './samplers/sampler.js';
export { ashaRungs, ashaPromotes, type AshaOptions } from './asha.js';
export { StudyJournal, type JournalRecord, type StudySignature, type TrialState } from './journal.js';
export { parameterImportance, type ImportanceTrial } from './importance.js';
export { presetBuilder, checkPresetSpace, PRESET_PARAMETERS } from './preset-builder.js';
export { trialTable, formatTrialTable } from './results-table.js';
