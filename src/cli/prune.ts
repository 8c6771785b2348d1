import { KilnError } from '../errors.js';
import { GraphModel } from '../train/graph-model.js';
import { Sequential } from '../train/sequential.js';
import { resolveOptimizer } from '../train/optimizers.js';
import { prune, type PruneOptions } from '../optimize/prune/prune.js';
import { scheduleFromChoice, type ScheduleChoice } from '../optimize/prune/magnitude.js';
import { fineTuneSteps, type FineTuneArgs } from '../optimize/prune/fine-tune.js';
import type { ModelSnapshot, PruneReport } from '../optimize/prune/report.js';
import type { GraphCriterion, GraphPruneReport, GraphStructuredArgs } from '../optimize/prune/graph-structured.js';
import { IMPORT_OPTIONS, importOptions, requireArraysForInputs, requireOneInput } from './import-options.js';
import { loadSplits, modelForData, splitSize } from './examples.js';
import { stringOption, type ParsedOptions } from './args.js';
import type { Command } from './command.js';
import { formatBytes, formatDuration, formatNumber, formatTable } from '../text/format.js';
import { progressOutput } from '../text/progress-output.js';

/** 5,630,000 → '5.63 M'. */
function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)} k`;
  return formatNumber(n);
}

const percent = (v: number) => `${(100 * v).toFixed(2)}%`;

/** 'after vs before' as a factor: 3.20× smaller, 1.80× faster (or 1.10× slower when it got worse). */
function ratio(before: number, after: number, better: string, worse = ''): string {
  if (!(after > 0 && before > 0) || before === after) return '';
  return before > after || !worse ? `${(before / after).toFixed(2)}× ${better}` : `${(after / before).toFixed(2)}× ${worse}`;
}

function comparison(b: ModelSnapshot, a: ModelSnapshot): string {
  const rows: string[][] = [
    ['Parameters', formatNumber(b.parameters), formatNumber(a.parameters), ratio(b.parameters, a.parameters, 'fewer')],
    ['Non-zero parameters', formatNumber(b.nonZeroParameters), formatNumber(a.nonZeroParameters), ratio(b.nonZeroParameters, a.nonZeroParameters, 'fewer')],
    ['FLOPs per example', formatCount(b.flops), formatCount(a.flops), ratio(b.flops, a.flops, 'fewer')],
    ['File size', formatBytes(b.fileBytes), formatBytes(a.fileBytes), ratio(b.fileBytes, a.fileBytes, 'smaller', 'larger')],
    ['File size, gzip', formatBytes(b.gzipBytes), formatBytes(a.gzipBytes), ratio(b.gzipBytes, a.gzipBytes, 'smaller', 'larger')],
  ];
  if (b.accuracy !== undefined && a.accuracy !== undefined) {
    rows.push(['Test accuracy', percent(b.accuracy), percent(a.accuracy), `${(100 * (a.accuracy - b.accuracy)).toFixed(2)} points`]);
  }
  if (b.latencyMs !== undefined && a.latencyMs !== undefined) {
    rows.push([`Latency, batch ${b.latencyBatchSize}`, `${b.latencyMs.toFixed(2)} ms`, `${a.latencyMs.toFixed(2)} ms`, ratio(b.latencyMs, a.latencyMs, 'faster', 'slower')]);
  }
  return formatTable(rows, { header: ['', 'Before', 'After', 'Change'], align: ['left', 'right', 'right', 'left'] });
}

function layerTable(report: PruneReport, perWeight: boolean): string {
  const rows = report.layers
    .filter((l) => l.parametersBefore > 0)
    .map((l) => [
      `${l.name} (${l.className})${l.pruned ? ' *' : ''}`,
      l.units ? (l.units[0] === l.units[1] ? String(l.units[0]) : `${l.units[0]} → ${l.units[1]}`) : '',
      l.parametersBefore === l.parametersAfter ? formatNumber(l.parametersAfter) : `${formatNumber(l.parametersBefore)} → ${formatNumber(l.parametersAfter)}`,
      formatNumber(l.nonZeroAfter),
      l.kernelSparsity !== undefined ? percent(l.kernelSparsity) : '',
      percent(l.sparsity),
    ]);
  rows.push(['total', '', formatNumber(report.after.parameters), formatNumber(report.after.nonZeroParameters), report.targetSparsity !== undefined ? percent(report.targetSparsity) : '', percent(report.sparsity)]);
  if (perWeight) {
    // An imported graph: one row per weight (initializer), named as in the file, with the op reading it.
    const table = formatTable(
      rows.map(([name, , params, nonZero, , sparsity]) => [name!, params!, nonZero!, sparsity!]),
      { header: ['Weight (op)', 'Parameters', 'Non-zero', 'Sparsity'], align: ['left', 'right', 'right', 'right'] },
    );
    return `${table}\n(* pruned)`;
  }
  const table = formatTable(rows, { header: ['Layer (type)', 'Units', 'Parameters', 'Non-zero', 'Kernel sparsity', 'Sparsity'], align: ['left', 'right', 'right', 'right', 'right', 'right'] });
  return `${table}\n(* pruned; sparsity counts every weight of the layer, biases included)`;
}

const KIND_WORDS = { channels: 'channels', units: 'hidden units', heads: 'attention heads', headDims: 'head dimensions' } as const;

/** Every group of an imported graph: pruned (units before → after) or left whole, with the node and the reason. */
function groupTable(report: GraphPruneReport): string {
  const rows = report.groups.map((g) => [
    g.producers.join(' + '),
    KIND_WORDS[g.kind],
    g.pruned ? `${g.units[0]} → ${g.units[1]}` : String(g.units[0]),
    g.pruned ? 'pruned' : g.leftWhole.length ? `left whole: ${g.leftWhole[0]!.node}${g.leftWhole[0]!.op ? ` (${g.leftWhole[0]!.op})` : ''} ${g.leftWhole[0]!.why}${g.leftWhole.length > 1 ? ` (+${g.leftWhole.length - 1} more)` : ''}` : 'kept (ratio 0)',
  ]);
  return formatTable(rows, { header: ['Group (produced by)', 'Kind', 'Units', ''], align: ['left', 'left', 'right', 'left'] });
}

/** With --parameters: which ratio removes that many, and whether the pruned model kept to the budget. */
function ratioFound(report: { ratio?: number; before: ModelSnapshot; after: ModelSnapshot }, parameters: number | undefined, of: string, note: string): string[] {
  if (report.ratio === undefined || parameters === undefined) return [];
  const kept = report.after.parameters / report.before.parameters;
  const over = kept > 1 - parameters + 1e-12 ? ` — above the budget of ${percent(1 - parameters)}: groups were left whole after the ratio was chosen (see below)` : '';
  return [`Ratio that removes ${percent(parameters)} of the parameters: ${report.ratio.toFixed(4)} of ${of}${note}; ${percent(kept)} of the parameters kept${over}`, ''];
}

/** The schedule flags as the library's ScheduleChoice (absent flags stay undefined). */
function scheduleChoice(options: ParsedOptions): ScheduleChoice {
  const kind = stringOption(options, 'schedule');
  const flag = (name: string) => (options[name] === undefined ? undefined : Number(options[name]));
  const choice = { beginStep: flag('begin-step'), endStep: flag('end-step'), frequency: flag('frequency'), power: flag('power'), initialSparsity: flag('initial-sparsity') };
  if (kind !== undefined && kind !== 'polynomial' && kind !== 'constant') throw new KilnError('INVALID_ARGUMENT', `kiln prune: --schedule must be 'polynomial' or 'constant', got '${kind}'`);
  return { kind, ...choice };
}

/** --layers: comma-separated names (`*` wildcards), or /regex/ for an imported graph's weight and node names. */
function parseLayers(text: string): string[] | RegExp {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(text);
  if (!re) return text.split(',').map((s) => s.trim()).filter(Boolean);
  try {
    return new RegExp(re[1]!, re[2]);
  } catch (err) {
    throw new KilnError('INVALID_ARGUMENT', `kiln prune: --layers ${text} is not a valid regular expression (${(err as Error).message})`);
  }
}

function parseMByN(text: string): [number, number] {
  const m = /^(\d+):(\d+)$/.exec(text);
  if (!m) throw new KilnError('INVALID_ARGUMENT', `kiln prune: --m-by-n expects M:N (M zeros in every N weights), e.g. 2:4; got '${text}'`);
  return [Number(m[1]), Number(m[2])];
}

export const pruneCommand: Command = {
  name: 'prune',
  summary: 'Prune a model (magnitude sparsity or whole filters), fine-tune it and report size, FLOPs, accuracy and latency',
  usage: 'kiln prune <model.onnx> (--sparsity 0.8 | --m-by-n 2:4 | --structured [--ratio] 0.5 | --structured --parameters 0.5) --dataset <name|path> [--epochs 2] --out pruned.onnx',
  options: [
    { name: 'sparsity', type: 'number', description: 'magnitude pruning: fraction of each pruned kernel set to zero, in [0, 1)' },
    { name: 'm-by-n', type: 'string', description: 'magnitude pruning with M zeros in every N weights along the input axis, e.g. 2:4' },
    { name: 'structured', type: 'number', valueOptional: true, description: 'structured pruning: fraction of filters/units removed from each pruned layer (or give it with --ratio)' },
    { name: 'ratio', type: 'number', description: 'structured: fraction of the units of each group (layer) removed' },
    { name: 'parameters', type: 'number', description: "structured: fraction of the model's parameters removed, instead of --ratio (the ratio that removes it is found and reported)" },
    { name: 'heads', type: 'number', description: "structured, imported graphs: fraction of each attention's heads removed (default: --ratio)" },
    { name: 'mlp', type: 'number', description: 'structured, imported graphs: fraction of the hidden units of MatMul/Gemm layers removed (default: --ratio)' },
    { name: 'head-dims', type: 'number', description: 'structured, imported graphs: fraction of the dimensions of every attention head removed (default 0)' },
    { name: 'dataset', type: 'string', description: 'data set for fine-tuning (train split) and accuracy (test split): a name or path, or a directory of NumPy arrays (x_train.npy, y_train.npy, x_test.npy, y_test.npy; one x_<split>.<input>.npy per input)', default: 'embedded' },
    { name: 'epochs', type: 'number', integer: true, min: 0, description: 'fine-tuning epochs (per round with --iterations; 0: prune without fine-tuning)', default: 2 },
    { name: 'batch-size', type: 'number', integer: true, min: 1, description: 'examples per fine-tuning step', default: 64 },
    { name: 'optimizer', type: 'string', description: 'sgd, adam, adamw, rmsprop or adagrad', default: 'adam' },
    { name: 'lr', type: 'number', description: "learning rate (default: the optimizer's Keras default)" },
    { name: 'layers', type: 'string', description: "comma-separated layers to prune (default: all Conv2D, Conv2DTranspose and Dense layers but the first and last; structured: but the last); imported graphs: weight or node names, patterns with *, or /regex/ (magnitude default: every weight matrix and conv kernel but the first and the classifier head; structured: the groups whose nodes or weights match)" },
    { name: 'scope', type: 'string', description: "magnitude pruning: 'layer' (each kernel reaches the sparsity) or 'global' (one threshold)", default: 'layer' },
    { name: 'schedule', type: 'string', description: "'polynomial' (TF-MOT PolynomialDecay, the default) or 'constant' (ConstantSparsity)" },
    { name: 'initial-sparsity', type: 'number', description: 'polynomial schedule: sparsity at the begin step (default 0)' },
    { name: 'begin-step', type: 'number', integer: true, min: 0, description: 'schedule: first pruning step (default 0)' },
    { name: 'end-step', type: 'number', integer: true, min: -1, description: 'schedule: last pruning step; -1: no end (constant schedule only) (default: ~70% of the fine-tuning steps)' },
    { name: 'frequency', type: 'number', integer: true, min: 1, description: 'schedule: steps between mask updates (default: ~1/20 of the steps, at most 100)' },
    { name: 'power', type: 'number', description: 'polynomial schedule: exponent (default 3)' },
    { name: 'criterion', type: 'string', description: "structured: rank filters by 'l1', 'l2', 'bnScale', or (imported graphs) 'taylor': |w · gradient| on 8 batches of the training data", default: 'l1' },
    { name: 'iterations', type: 'number', integer: true, min: 1, description: 'structured (layer models and imported graphs): remove the ratio in this many rounds, fine-tuning after each', default: 1 },
    { name: 'latency-batch', type: 'number', integer: true, min: 0, description: 'batch size for the latency comparison (0: skip it)', default: 64 },
    { name: 'seed', type: 'number', integer: true, description: 'seed for shuffling', default: 42 },
    { name: 'out', type: 'string', description: 'where to save the pruned model', default: 'pruned.onnx' },
    { name: 'json', type: 'boolean', description: 'print the report as JSON' },
    ...IMPORT_OPTIONS.filter((o) => ['layout', 'scale', 'mean', 'std', 'dimension', 'model-output'].includes(o.name)),
  ],
  async run({ positionals, options }, out) {
    const file = positionals[0];
    if (!file) throw new KilnError('INVALID_ARGUMENT', 'kiln prune: give a model file, e.g. kiln prune model.onnx --sparsity 0.8 --dataset fashion-mnist --out pruned.onnx');
    const flag = (name: string) => (options[name] === undefined ? undefined : Number(options[name]));
    const graphFlags = (['heads', 'mlp', 'head-dims'] as const).filter((k) => options[k] !== undefined);
    const structuredFlag = (['ratio', 'parameters', ...graphFlags] as const).find((k) => options[k] !== undefined);
    if (options.structured === undefined && structuredFlag) throw new KilnError('INVALID_ARGUMENT', `kiln prune: --${structuredFlag} belongs to structured pruning: add --structured`);
    if (typeof options.structured === 'number' && options.ratio !== undefined) throw new KilnError('INVALID_ARGUMENT', 'kiln prune: give the ratio once: --structured 0.5 or --structured --ratio 0.5');
    if (options.parameters !== undefined && (typeof options.structured === 'number' || options.ratio !== undefined)) {
      throw new KilnError('INVALID_ARGUMENT', 'kiln prune: give --parameters or a ratio, not both: --structured --parameters 0.5 finds the ratio that removes half the parameters');
    }
    const modes = (['sparsity', 'm-by-n', 'structured'] as const).filter((k) => options[k] !== undefined);
    if (modes.length !== 1) {
      throw new KilnError('INVALID_ARGUMENT', `kiln prune: give exactly one of --sparsity, --m-by-n or --structured${modes.length ? ` (got ${modes.map((m) => `--${m}`).join(' and ')})` : ''}`);
    }
    const ratio = typeof options.structured === 'number' ? options.structured : flag('ratio');
    const parameters = flag('parameters');
    if (options.structured === true && ratio === undefined && parameters === undefined && graphFlags.length === 0) {
      throw new KilnError('INVALID_ARGUMENT', 'kiln prune: --structured needs a ratio: --structured --ratio 0.5, or a parameter budget: --structured --parameters 0.5 (imported graphs: or --heads / --mlp / --head-dims)');
    }
    const { model, data: readFirst } = await modelForData(file, importOptions(options), String(options.dataset));
    requireArraysForInputs(model, file, String(options.dataset));
    if (!(model instanceof Sequential) && !(model instanceof GraphModel)) {
      throw new KilnError('NOT_TRAINABLE', `'${file}' cannot be pruned: ${model.notTrainable ?? 'Kiln can run it but not train it'}`);
    }
    if (graphFlags.length && !(model instanceof GraphModel && options.structured !== undefined)) {
      throw new KilnError('INVALID_ARGUMENT', `kiln prune: --${graphFlags[0]} applies to structured pruning of imported graphs (attention heads, MatMul hidden units)${model instanceof Sequential ? `; '${file}' is a Kiln layer model: use --structured --ratio` : ': add --structured'}`);
    }
    const data = readFirst ?? (await loadSplits(String(options.dataset)));
    requireOneInput(model, file, data.train.x);
    const epochs = Number(options.epochs);
    const fineTune: FineTuneArgs | undefined =
      epochs > 0
        ? {
            x: data.train.x,
            y: data.train.y,
            epochs,
            batchSize: Number(options['batch-size']),
            optimizer: resolveOptimizer({ name: String(options.optimizer), config: options.lr !== undefined ? { learningRate: Number(options.lr) } : {} }),
            seed: Number(options.seed),
            verbose: options.json ? 0 : 1,
            stream: progressOutput(out),
          }
        : undefined;
    const latencyBatch = Number(options['latency-batch']);
    const layers = options.layers !== undefined ? parseLayers(String(options.layers)) : undefined;
    const common = { layers, fineTune, evaluation: { x: data.test.x, y: data.test.y }, latency: latencyBatch > 0 ? { batchSize: latencyBatch } : false };
    let t0 = 0;
    const announce = (what: string) => {
      if (!options.json) out(`Pruning ${file} (${what}); fine-tuning ${fineTune ? `${epochs} epoch(s) on ${options.dataset}: ${splitSize(data.train)} ${data.kind === 'images' ? 'images' : 'examples'}` : 'skipped'}`);
      t0 = performance.now();
    };
    /** Saves the pruned model, then prints the report: JSON, or the before/after table and the details. */
    const finish = async (pruned: { save(file: string): Promise<void> }, report: { before: ModelSnapshot; after: ModelSnapshot }, details: () => string[]) => {
      await pruned.save(String(options.out));
      if (options.json) {
        out(JSON.stringify(report));
        return 0;
      }
      out('');
      out(comparison(report.before, report.after));
      out('');
      for (const line of details()) out(line);
      out(`\nSaved ${options.out} (${formatDuration(performance.now() - t0)})`);
      return 0;
    };
    if (model instanceof GraphModel && options.structured !== undefined) {
      if (layers instanceof RegExp) throw new KilnError('INVALID_ARGUMENT', `kiln prune: --layers ${options.layers}: structured pruning of an imported graph matches its groups by names with * wildcards, not a /regex/`);
      const criterion = String(options.criterion) as GraphCriterion;
      // Taylor ranking reads the loss gradient on the training split, with or without fine-tuning.
      const taylorData = criterion === 'taylor' ? { data: { x: data.train.x, y: data.train.y, batchSize: Number(options['batch-size']) } } : {};
      const structured: GraphStructuredArgs = { ratio, parameters, heads: flag('heads'), mlp: flag('mlp'), headDims: flag('head-dims'), criterion, iterations: Number(options.iterations), groups: layers, ...taylorData };
      const words = { heads: 'heads', mlp: 'MLP units', 'head-dims': 'head dimensions' } as const;
      const parts = [ratio !== undefined ? `${percent(ratio)} of each group's units` : '', parameters !== undefined ? `${percent(parameters)} of the parameters` : '', ...graphFlags.map((k) => `${percent(Number(options[k]))} of ${words[k]}`)].filter(Boolean);
      announce(`structured, removing ${parts.join(', ')}`);
      const { model: pruned, report } = await prune(model, { ...common, structured });
      const given = [structured.heads !== undefined ? 'heads' : '', structured.mlp !== undefined ? 'MLP units' : ''].filter(Boolean);
      return finish(pruned, report, () => [...ratioFound(report, parameters, "each group's units", given.length ? ` (${given.join(' and ')} as given)` : ''), groupTable(report)]);
    }
    let pruneOptions: PruneOptions;
    if (options.structured !== undefined) {
      pruneOptions = { ...common, structured: { ratio, parameters, criterion: String(options.criterion) as never, iterations: Number(options.iterations) } };
    } else if (options['m-by-n'] !== undefined) {
      pruneOptions = { ...common, sparsityMByN: parseMByN(String(options['m-by-n'])), scope: String(options.scope) as never };
    } else {
      const sparsity = Number(options.sparsity);
      const schedule = fineTune ? scheduleFromChoice(scheduleChoice(options), sparsity, fineTuneSteps(fineTune)) : undefined;
      pruneOptions = { ...common, scope: String(options.scope) as never, ...(schedule ? { schedule } : { sparsity }) };
    }
    announce(options.structured !== undefined ? `structured, removing ${parameters !== undefined ? `${percent(parameters)} of the parameters` : `${percent(ratio!)} of filters/units`}` : options['m-by-n'] !== undefined ? `${options['m-by-n']} sparsity` : `magnitude, ${percent(Number(options.sparsity))} sparsity`);
    const { model: pruned, report } = model instanceof GraphModel ? await prune(model, pruneOptions) : await prune(model, pruneOptions);
    return finish(pruned, report, () => [...ratioFound(report, parameters, 'the filters/units of each pruned layer', ''), layerTable(report, model instanceof GraphModel), ...(report.schedule ? [`\nSchedule: ${report.schedule.name} ${JSON.stringify(report.schedule.config)}; ${report.maskUpdates?.length ?? 0} mask updates`] : [])]);
  },
};
