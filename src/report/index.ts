/** `kiln report`: one self-contained HTML page comparing a model's variants, with charts. */
export { renderReport, writeReport, escapeHtml, type ReportOptions } from './html.js';
export { accuracyScatterSpec, curvePoints, renderSvg, trainingCurveSpec, type CurvePoint } from './charts.js';
export { report, type CreateReportOptions, type ReportInput } from './report.js';
export { renderTuneReport, writeTuneReport, objectivePerTrialSpec, parameterSpec, type TuneReportOptions } from './tune.js';
export { renderOptimizeReport, writeOptimizeReport, frontSpec, candidateRows } from './optimize.js';
