/**
 * How long opening an exported model for training takes: GraphModel.load (decode, run the file at
 * batch sizes 2 and 3 with every intermediate value as an output to measure shapes, find the
 * parameters, fold constants) against OnnxModel.load (decode only) of the same file, interleaved in
 * the same run. Prints the median of --repeats loads per fixture.
 */
import os from 'node:os';
import { OnnxModel } from '../../src/model/onnx-model.js';
import { GraphModel } from '../../src/train/graph-model.js';
import { benchArgs } from '../args.js';

const FIXTURES = ['resnet', 'resnet_fused', 'mlp', 'dwsep', 'vit13', 'vit17'];
const args = benchArgs('node dist/bench/any-onnx/load-time.js [flags]', {
  fixtures: { type: 'string', default: FIXTURES.join(','), help: 'comma-separated fixtures of test/fixtures/exported' },
  repeats: { type: 'number', default: 7, help: 'loads per fixture and loader (the median is printed)' },
});

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
console.log(`machine: ${os.availableParallelism()} cores, ${os.cpus()[0]?.model ?? '?'}; node ${process.version}; load average ${os.loadavg()[0]!.toFixed(2)}`);
console.log('fixture        GraphModel.load  OnnxModel.load  parameters');
for (const name of args.fixtures.split(',')) {
  const file = `test/fixtures/exported/${name}.onnx`;
  await GraphModel.load(file); // first load warms ONNX Runtime's worker
  const graph: number[] = [];
  const plain: number[] = [];
  let parameters = 0;
  for (let k = 0; k < args.repeats; k++) {
    let t0 = performance.now();
    const model = await GraphModel.load(file);
    graph.push(performance.now() - t0);
    parameters = model.countParams().total;
    t0 = performance.now();
    await OnnxModel.load(file);
    plain.push(performance.now() - t0);
  }
  console.log(`${name.padEnd(14)} ${median(graph).toFixed(1).padStart(12)} ms ${median(plain).toFixed(1).padStart(12)} ms  ${String(parameters).padStart(10)}`);
}
process.exit(0);
