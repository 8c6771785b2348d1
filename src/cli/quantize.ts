import { KilnError } from '../errors.js';
import { CALIBRATION_METHODS, FLOAT_OP_KINDS, QUANTIZATION_MODES, quantize, suggestFasterMode, type CalibrationMethod, type FloatOpKind, type QuantizationMode, type QuantizationReport, type QuantizeOptions } from '../optimize/quantize/index.js';
import { loadModel } from '../train/load.js';
import { Tensor } from '../tensor.js';
import { stringOption } from './args.js';
import { requireArraysForInputs, requireOneInput } from './import-options.js';
import { loadSplits, type LabeledSplit } from './examples.js';
import type { Command } from './command.js';
import { formatBytes, formatTable } from '../text/format.js';
import { progressOutput } from '../text/progress-output.js';

const MODE_LABEL: Record<QuantizationMode, string> = { static: 'static int8', dynamic: 'dynamic int8', float16: 'float16', qat: 'QAT int8' };

function percent(v: number | undefined): string {
  return v === undefined ? '-' : `${(100 * v).toFixed(2)}%`;
}

/** The before/after table, the layers that stayed float and why, and what else happened. */
export function formatQuantizationReport(r: QuantizationReport): string[] {
  const label = MODE_LABEL[r.mode];
  const e = r.evaluation;
  const rows: (string | number)[][] = [['Size', formatBytes(r.sizeBefore), formatBytes(r.sizeAfter), `${r.compression.toFixed(2)}× smaller`]];
  if (e) {
    if (e.before.accuracy !== undefined && e.after.accuracy !== undefined) {
      const delta = 100 * (e.after.accuracy - e.before.accuracy);
      rows.push(['Accuracy', percent(e.before.accuracy), percent(e.after.accuracy), `${delta >= 0 ? '+' : ''}${delta.toFixed(2)} points`]);
    }
    const speedup = e.before.latencyMs / e.after.latencyMs;
    rows.push([`Latency (batch ${e.batchSize})`, `${e.before.latencyMs.toFixed(2)} ms`, `${e.after.latencyMs.toFixed(2)} ms`, speedup >= 1 ? `${speedup.toFixed(2)}× faster` : `${(1 / speedup).toFixed(2)}× slower than float32 here`]);
  }
  const lines = [formatTable(rows, { header: ['', 'float32', label, 'change'], align: ['left', 'right', 'right', 'left'] })];
  if (e && Number.isFinite(e.agreement)) lines.push(`Same class as the float model for ${percent(e.agreement)} of the examples; largest output difference ${e.maxAbsDiff.toPrecision(3)} (outputs up to ${e.maxAbsFloat.toPrecision(3)}).`);
  if (e) lines.push(`ONNX Runtime runs (after its graph optimizations): ${runtimeOpsLine(e.runtimeOps.after)}; the float32 model: ${runtimeOpsLine(e.runtimeOps.before)}.`);
  if (r.calibration) lines.push(`Calibration: ${r.calibration.method} on ${r.calibration.samples} examples.`);
  if (r.fineTune) {
    const acc = r.fineTune.history.accuracy?.at(-1);
    lines.push(`Quantization-aware fine-tuning: ${r.fineTune.epochs} epoch(s), final loss ${r.fineTune.history.loss?.at(-1)?.toFixed(4)}${acc !== undefined ? `, accuracy ${percent(acc)}` : ''}.`);
  }
  if (r.foldedBatchNorm.length > 0) lines.push(`BatchNormalization folded into the convolution before it: ${r.foldedBatchNorm.join(', ')}.`);
  if (r.mode !== 'float16') {
    lines.push('');
    if (r.floatLayers.length === 0) lines.push('Every layer runs in int8.');
    else {
      lines.push('Layers kept in float:');
      lines.push(formatTable(r.floatLayers.map((l) => [l.layer, l.reason]), { header: ['Layer', 'Why'] }));
    }
  } else if (r.layers[0]?.reason) lines.push(`Every layer: ${r.layers[0].reason}.`);
  return lines;
}

/** Integer kernels ONNX Runtime fused the QDQ groups into, and the conversions and float compute ops left. */
const INTEGER_OP = /^(QLinear|QGemm|QAttention|MatMulInteger|ConvInteger|DynamicQuantize|QuantizeLinear|DequantizeLinear|NhwcMaxPool)/;
const FLOAT_COMPUTE_OPS = new Set(['Conv', 'FusedConv', 'MatMul', 'FusedMatMul', 'Gemm', 'FusedGemm']);

export function runtimeOpsLine(ops: Record<string, number>): string {
  const listed = Object.entries(ops).filter(([op]) => INTEGER_OP.test(op) || FLOAT_COMPUTE_OPS.has(op));
  listed.sort((a, b) => Number(FLOAT_COMPUTE_OPS.has(a[0])) - Number(FLOAT_COMPUTE_OPS.has(b[0])) || b[1] - a[1]);
  return listed.length === 0 ? 'no Conv/Gemm/MatMul' : listed.map(([op, n]) => `${op} ×${n}`).join(', ');
}

function floatOpsOption(v: unknown): FloatOpKind[] | undefined {
  if (v === undefined) return undefined;
  const kinds = String(v) === 'none' ? [] : String(v).split(',').map((s) => s.trim()).filter(Boolean);
  const bad = kinds.find((k) => !FLOAT_OP_KINDS.includes(k as FloatOpKind));
  if (bad !== undefined) throw new KilnError('INVALID_ARGUMENT', `kiln quantize: --float-ops takes a comma-separated list of ${FLOAT_OP_KINDS.join(', ')} (or none), got '${bad}'`);
  return kinds as FloatOpKind[];
}

function reduceRangeOption(v: unknown): boolean | undefined {
  if (v === 'auto' || v === undefined) return undefined;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new KilnError('INVALID_ARGUMENT', `kiln quantize: --reduce-range must be auto, on or off, got '${String(v)}'`);
}

function fineTuneData(train: LabeledSplit, samples: number): { x: Tensor; y: Tensor } {
  // QAT fine-tunes a Kiln layer model, whose one input is a tensor.
  if (!(train.x instanceof Tensor)) throw new KilnError('INVALID_ARGUMENT', `--mode qat fine-tunes a Kiln layer model of one input; the data set holds one array per input (${Object.keys(train.x).join(', ')})`);
  const x = train.x;
  return samples > 0 ? { x: x.slice(0, samples), y: train.y.slice(0, samples) } : { x, y: train.y };
}

function list(v: unknown): string[] | undefined {
  return typeof v === 'string' && v.trim() ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
}

export const quantizeCommand: Command = {
  name: 'quantize',
  summary: 'Quantize a model to int8 (dynamic, static, QAT) or float16 as standard ONNX; report size, accuracy and latency',
  usage: 'kiln quantize <model.onnx> --mode <static|dynamic|float16|qat> [--dataset fashion-mnist] [--calibration-samples 512] --out model.int8.onnx',
  options: [
    { name: 'mode', type: 'string', description: `${QUANTIZATION_MODES.join(', ')}`, default: 'static' },
    { name: 'dataset', type: 'string', description: 'data set: calibration and fine-tuning from its training split, accuracy on its test split; a name or path, or a directory of NumPy arrays (x_train.npy, y_train.npy, x_test.npy, y_test.npy; one x_<split>.<input>.npy per input)', default: 'embedded' },
    { name: 'calibration-samples', type: 'number', integer: true, min: 1, description: 'calibration examples (a seeded random subset)', default: 512 },
    { name: 'method', type: 'string', description: `calibration: ${CALIBRATION_METHODS.join(', ')}`, default: 'minmax' },
    { name: 'percentile', type: 'number', description: 'for --method percentile', default: 99.999 },
    { name: 'activation-type', type: 'string', description: 'uint8 or int8 activations (static, qat)', default: 'uint8' },
    { name: 'per-tensor', type: 'boolean', description: 'one scale per weight tensor instead of per output channel' },
    { name: 'reduce-range', type: 'string', description: '7-bit weights against u8·s8 saturation on x86 without VNNI: auto (on where this CPU needs it), on, off', default: 'auto' },
    { name: 'weight-bits', type: 'number', integer: true, min: 2, max: 8, description: 'weight precision in bits (stored as int8)' },
    { name: 'min-conv-reduction', type: 'number', integer: true, min: 0, description: 'keep convolutions summing fewer products per output in float (their kernels stored in 8 bits; 0: quantize all)', default: 128 },
    { name: 'exclude', type: 'string', description: 'comma-separated layer names (node names of other ONNX models) to keep in float' },
    { name: 'float-ops', type: 'string', description: `static: transformer ops kept in float, of ${FLOAT_OP_KINDS.join(', ')}, or none (default: all three)` },
    { name: 'no-suggest', type: 'boolean', description: 'when the quantized model measures slower than float, do not try the other int8 mode' },
    { name: 'float16-compute', type: 'boolean', description: 'float16: compute in float16 too (not only storage)' },
    { name: 'epochs', type: 'number', integer: true, min: 1, description: 'qat: fine-tuning epochs', default: 1 },
    { name: 'fine-tune-samples', type: 'number', integer: true, min: 0, description: 'qat: fine-tune on the first N training examples (0: all)', default: 0 },
    { name: 'lr', type: 'number', description: 'qat: learning rate', default: 1e-4 },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'batch size of the latency measurement (and of qat fine-tuning)', default: 64 },
    { name: 'no-eval', type: 'boolean', description: 'skip measuring accuracy and latency' },
    { name: 'json', type: 'boolean', description: 'print the report as JSON' },
    { name: 'out', type: 'string', description: 'where to write the quantized model (default: <model>.int8.onnx; float16: <model>.fp16.onnx)' },
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln quantize: give a model file, e.g. kiln quantize model.onnx --mode static --dataset fashion-mnist --out model.int8.onnx');
    const mode = String(options.mode) as QuantizationMode;
    if (!QUANTIZATION_MODES.includes(mode)) throw new KilnError('INVALID_ARGUMENT', `kiln quantize: unsupported --mode '${mode}'; expected one of ${QUANTIZATION_MODES.join(', ')}`);
    const target = stringOption(options, 'out') ?? file.replace(/(\.onnx)?$/i, `.${mode === 'float16' ? 'fp16' : 'int8'}.onnx`);
    // A Kiln model comes back with its layers (qat trains them; reports name them); others as graphs.
    const model = await loadModel(file);
    // Calibration, fine-tuning and the evaluation read --dataset; dynamic and float16 with --no-eval need none.
    const calibrated = mode === 'static' || mode === 'qat';
    const needsData = calibrated || !options['no-eval'];
    if (needsData) requireArraysForInputs(model, file, String(options.dataset));
    const data = needsData ? await loadSplits(String(options.dataset)) : undefined;
    if (data) requireOneInput(model, file, data.train.x);
    const batchSize = Number(options['batch-size']);
    const quantizeOptions: QuantizeOptions = {
      mode,
      ...(data ? { calibration: data.train.x } : {}),
      calibrationSamples: Number(options['calibration-samples']),
      method: String(options.method) as CalibrationMethod,
      percentile: Number(options.percentile),
      activationType: String(options['activation-type']) as 'uint8' | 'int8',
      perChannel: !options['per-tensor'],
      reduceRange: reduceRangeOption(options['reduce-range']),
      weightBits: options['weight-bits'] === undefined ? undefined : Number(options['weight-bits']),
      minConvReduction: Number(options['min-conv-reduction']),
      exclude: list(options.exclude),
      floatOps: floatOpsOption(options['float-ops']),
      float16Compute: Boolean(options['float16-compute']),
      ...(mode === 'qat' && data ? { fineTune: { ...fineTuneData(data.train, Number(options['fine-tune-samples'])), epochs: Number(options.epochs), learningRate: Number(options.lr), batchSize, verbose: options.json ? 0 : 2, stream: progressOutput(out) } } : {}),
      ...(options['no-eval'] || !data ? {} : { evaluate: { x: data.test.x, y: data.test.y, batchSize } }),
    };
    const quantized = await quantize(model, quantizeOptions);
    await quantized.save(target);
    // Slower than float on this CPU: measure the other int8 mode and say which to use.
    const suggestion = options['no-suggest'] ? undefined : await suggestFasterMode(model, quantized.report, quantizeOptions);
    if (options.json) {
      out(JSON.stringify({ file: target, ...quantized.report, ...(suggestion ? { suggestion } : {}) }));
      return 0;
    }
    out(`Quantized ${file} (${MODE_LABEL[mode]}) → ${target}`);
    for (const line of formatQuantizationReport(quantized.report)) out(line);
    if (suggestion) out(`\nSpeed: ${suggestion.advice}`);
    return 0;
  },
};
