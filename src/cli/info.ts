import { formatShape } from '../errors.js';
import { OnnxModel } from '../model/onnx-model.js';
import { formatBytes, formatNumber, formatTable } from './format.js';
import type { Command } from './command.js';
import { KilnError } from '../errors.js';

export const infoCommand: Command = {
  name: 'info',
  summary: 'Show the inputs, outputs, operators, parameters and size of any ONNX model',
  usage: 'kiln info <model.onnx> [--json]',
  options: [{ name: 'json', type: 'boolean', description: 'print the description as JSON' }],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln info: give a model file, e.g. kiln info model.onnx');
    const model = await OnnxModel.load(file);
    const d = model.description;
    if (options.json) {
      out(JSON.stringify(d, null, 2));
      return 0;
    }
    out(`Model: ${file}`);
    out(`Producer: ${d.producer}    IR version: ${d.irVersion}    Opsets: ${d.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}`);
    out(`Size: ${formatBytes(d.bytes)}    Parameters: ${formatNumber(d.parameters)}`);
    out('');
    const io = [...d.inputs.map((v) => ['input', v.name, v.dtype, v.shape ? formatShape(v.shape) : '?']), ...d.outputs.map((v) => ['output', v.name, v.dtype, v.shape ? formatShape(v.shape) : '?'])];
    out(formatTable(io, { header: ['', 'Name', 'Type', 'Shape'] }));
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
    return 0;
  },
};
