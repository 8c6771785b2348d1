/** `kiln export-trainer`: a model file in, a training package (for a browser page or any ONNX Runtime) out. */
import { KilnError } from '../errors.js';
import { exportTrainer } from '../train/export-trainer.js';
import { GraphModel } from '../train/graph-model.js';
import { loadModel } from '../train/load.js';
import { resolveLoss } from '../train/losses.js';
import { classifierLoss } from './classifier-loss.js';
import { recordedTraining } from '../train/model.js';
import { resolveOptimizer } from '../train/optimizers.js';
import { Sequential } from '../train/sequential.js';
import { formatBytes, formatNumber } from '../text/format.js';
import { stringOption } from './args.js';
import type { Command } from './command.js';

export const exportTrainerCommand: Command = {
  name: 'export-trainer',
  summary: 'Write a training package (training step, evaluation step, weights, optimizer state, manifest) for a browser page',
  usage: 'kiln export-trainer model.onnx --out DIR [--optimizer adam] [--lr 0.001]',
  options: [
    { name: 'out', type: 'string', description: 'folder to write the package into' },
    { name: 'optimizer', type: 'string', description: "sgd, adam, adamw, rmsprop or adagrad (default: the one the model was trained with, else adam)" },
    { name: 'lr', type: 'number', description: "learning rate (default: the optimizer's)" },
  ],
  async run({ positionals, options }, out) {
    const [file, ...extra] = positionals;
    if (!file || extra.length > 0) throw new KilnError('INVALID_ARGUMENT', `kiln export-trainer: give one model file (got ${positionals.length}); usage: kiln export-trainer model.onnx --out DIR`);
    const outDir = stringOption(options, 'out');
    if (!outDir) throw new KilnError('INVALID_ARGUMENT', 'kiln export-trainer: --out DIR is required (where the package goes)');
    const model = await loadModel(file);
    if (!(model instanceof Sequential || model instanceof GraphModel)) {
      throw new KilnError('NOT_TRAINABLE', `'${file}' cannot be trained: ${model.notTrainable ?? 'Kiln cannot feed it data'}`);
    }
    // The optimizer and loss the model was compiled with, as its file records them, unless told otherwise.
    const training = recordedTraining(model.metadata) ?? {};
    const given = stringOption(options, 'optimizer');
    const base = given ? { name: given, config: {} } : (training.optimizer ?? { name: 'adam', config: {} });
    const optimizer = resolveOptimizer(options.lr !== undefined ? { name: base.name, config: { ...base.config, learningRate: Number(options.lr) } } : base);
    const loss = training.loss ? resolveLoss(training.loss) : classifierLoss(model, {});
    model.compile({ optimizer, loss, metrics: ['accuracy'] });
    const manifest = await exportTrainer(model, outDir);
    const total = Object.values(manifest.files).reduce((n, f) => n + f.bytes, 0);
    out(`Training package for ${manifest.name} (${formatNumber(manifest.totalSize)} trainable weights; ${manifest.optimizer.name}, ${manifest.loss.name}) → ${outDir}/`);
    for (const f of Object.values(manifest.files)) out(`  ${f.path.padEnd(16)} ${formatBytes(f.bytes)}`);
    out(`  manifest.json    Kiln ${manifest.kilnVersion}, format ${manifest.formatVersion}; ${formatBytes(total)} in all`);
    out(`A page trains it with: const trainer = await kiln.loadTrainer('${outDir}/'); await trainer.fit(x, y)`);
    model.dispose();
    return 0;
  },
};
