import { KilnError, formatShape } from '../errors.js';
import { OnnxModel } from '../model/onnx-model.js';
import { formatBytes, formatNumber, formatTable } from '../text/format.js';
import type { Command } from './command.js';
import type { UntrainableOp } from '../model/imported-graph.js';
import { GraphModel, type TiedWeight } from '../train/graph-model.js';
import { loadModel } from '../train/load.js';
import { importOptions } from './import-options.js';
import { scaleRecognized } from '../model/input-adapter.js';

export const infoCommand: Command = {
  name: 'info',
  summary: 'Show the inputs, outputs, operators, parameters and size of any ONNX model',
  usage: 'kiln info <model.onnx> [--trainable [--dimension name=size]] [--json]',
  options: [
    { name: 'json', type: 'boolean', description: 'print the description as JSON' },
    { name: 'trainable', type: 'boolean', description: 'also say whether Kiln can train the model, and list every op that stops it' },
    { name: 'dimension', type: 'string', description: "with --trainable: sizes for an imported model's free input dimensions, e.g. sequence=128" },
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln info: give a model file, e.g. kiln info model.onnx');
    const model = await OnnxModel.load(file);
    const d = model.description;
    if (options.dimension !== undefined && !options.trainable) throw new KilnError('INVALID_ARGUMENT', 'kiln info: --dimension sizes the model for --trainable; add --trainable');
    const trainability = options.trainable ? await trainabilityOf(file, importOptions(options).dimensions) : undefined;
    if (options.json) {
      out(JSON.stringify(trainability ? { ...d, trainability } : d, null, 2));
      return 0;
    }
    out(`Model: ${file}`);
    out(`Producer: ${d.producer}    IR version: ${d.irVersion}    Opsets: ${d.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`);
    out(`Size: ${formatBytes(d.bytes)}    Parameters: ${formatNumber(d.parameters)}`);
    out('');
    const io = [...d.inputs.map((v) => ['input', v.name, v.dtype, v.shape ? formatShape(v.shape) : '?']), ...d.outputs.map((v) => ['output', v.name, v.dtype, v.shape ? formatShape(v.shape) : '?'])];
    out(formatTable(io, { header: ['', 'Name', 'Type', 'Shape'] }));
    if (d.inputRescaling && scaleRecognized(d)) {
      const { node, factor } = d.inputRescaling;
      out(`Input scale: raw 0–255 pixels (node '${node}' multiplies them by 1/${Number((1 / factor).toPrecision(6))} itself, as Keras' Rescaling layer does); Kiln feeds its images so unless --scale says otherwise`);
    }
    out('');
    const ops = Object.entries(d.ops).sort((a, b) => b[1] - a[1]);
    out(formatTable(ops, { header: ['Operator', 'Count'] }));
    const weights = d.initializers.filter((t) => t.size > 1 && t.dtype.startsWith('float'));
    if (weights.length > 0) {
      out('');
      const rows = weights.map((t) => [t.name, formatShape(t.shape), t.size, `${((100 * t.zeros) / t.size).toFixed(1)}%`]);
      const total = weights.reduce((n, t) => n + t.size, 0);
      const zeros = weights.reduce((n, t) => n + t.zeros, 0);
      rows.push(['total', '', total, `${((100 * zeros) / Math.max(1, total)).toFixed(1)}%`]);
      out(formatTable(rows, { header: ['Weight', 'Shape', 'Elements', 'Sparsity'] }));
    }
    if (trainability) {
      out('');
      const { trainable, reason, parameters, missing } = trainability;
      out(trainable ? `Trainable: yes (${formatNumber(parameters.trainable)} trainable parameters, ${formatNumber(parameters.frozen)} non-trainable)` : `Trainable: no — ${reason}`);
      for (const t of trainability.tied) out(tiedWeightLine(t));
      if (missing.length > 0) {
        const why = missing.some((m) => m.why);
        out(formatTable(missing.map((m) => [m.op, m.node, ...(why ? [m.why ?? 'no gradient rule'] : [])]), { header: ['Op without a gradient rule', 'Node', ...(why ? ['Why'] : [])] }));
      }
    }
    return 0;
  },
};

interface Trainability {
  trainable: boolean;
  reason?: string;
  parameters: { trainable: number; frozen: number };
  missing: UntrainableOp[];
  tied: TiedWeight[];
}

/** Whether `kiln train --model` can fine-tune the file, and every op that stops it. */
async function trainabilityOf(file: string, dimensions?: Readonly<Record<string, number>>): Promise<Trainability> {
  const model = await loadModel(file, { dimensions });
  if (model instanceof OnnxModel) return { trainable: false, reason: model.notTrainable, parameters: { trainable: 0, frozen: 0 }, missing: [], tied: [] };
  const { total, trainable } = model.countParams();
  const parameters = { trainable, frozen: total - trainable };
  const missing = model instanceof GraphModel ? model.untrainableOps() : [];
  const tied = model instanceof GraphModel ? model.tiedWeights() : [];
  if (missing.length > 0) return { trainable: false, reason: `Kiln has no gradient rule for ${[...new Set(missing.map((m) => m.op))].join(', ')}`, parameters, missing, tied };
  if (trainable === 0) return { trainable: false, reason: 'no float weight reaches the output', parameters, missing, tied };
  if (model instanceof GraphModel) {
    // Some rules cover only part of their op (Pad's modes, Resize's coordinate rules, static sizes):
    // compiling the training step is what says whether every node on the path has one. Mean squared
    // error takes any output, so a regression model or a squeezed logit is judged on its nodes alone.
    try {
      model.compile({ optimizer: 'sgd', loss: 'meanSquaredError' });
    } catch (err) {
      if (err instanceof KilnError && err.code === 'NO_GRADIENT') return { trainable: false, reason: err.message, parameters, missing, tied };
      throw err;
    }
  }
  return { trainable: true, parameters, missing, tied };
}

/** The line `kiln info` and `kiln train` print for a tied copy the exporter wrote. */
export function tiedWeightLine(t: TiedWeight): string {
  return `Tied: ${t.name} is ${t.source}${t.transpose ? ' transposed' : ''} (the exporter's copy; it trains as ${t.source})`;
}
