/**
 * Whether Kiln should carry float16 tensors (issue: ONNX conformance): what float16 compute costs or
 * gains in ONNX Runtime on this CPU. The tutorial and Fashion CNNs run in float32 and converted to
 * float16 weights *and* compute (kiln.quantize mode 'float16', float16Compute; inputs and outputs stay
 * float32, so both sessions take the same feeds), timed alternately in the same run at batch 1 and
 * batch 64, one and two threads. Prints the CPU's SIMD flags: float16 arithmetic needs AVX512-FP16
 * (or ARM's FP16) to be native.
 */
import os from 'node:os';
import ort from 'onnxruntime-node';
import { quantize } from '../../src/optimize/quantize/index.js';
import { benchArgs } from '../args.js';
import { cpuDescription, fashionCnn, tutorialCnn } from '../train/common.js';

const args = benchArgs('node dist/bench/float16/compute.js [flags]', {
  rounds: { type: 'number', default: 7, help: 'alternating rounds (the median is printed)' },
  runs: { type: 'number', default: 20, help: 'calls per round and model' },
});

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
console.log(`machine: ${cpuDescription()}; node ${process.version}; onnxruntime-node ${ort.env.versions.node ?? ''}; load average ${os.loadavg()[0]!.toFixed(2)}`);
console.log('model, batch, threads: float32 ms, float16 ms, float16/float32');
for (const [name, make] of [['tutorial CNN', tutorialCnn], ['Fashion CNN', fashionCnn]] as const) {
  const model = make();
  const f32 = model.toOnnx();
  const f16 = (await quantize(model, { mode: 'float16', float16Compute: true })).bytes;
  const shape = model.inputShape;
  for (const batch of [1, 64]) {
    for (const threads of [1, 2]) {
      const sessions = await Promise.all([f32, f16].map((bytes) => ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, graphOptimizationLevel: 'all' })));
      const size = batch * shape.reduce((a, b) => a * b, 1);
      const feeds = { input: new ort.Tensor('float32', Float32Array.from({ length: size }, (_, i) => (i % 17) / 17), [batch, ...shape]) };
      const times: number[][] = [[], []];
      for (const s of sessions) for (let i = 0; i < 5; i++) await s.run(feeds);
      for (let r = 0; r < args.rounds; r++) {
        for (const [k, s] of sessions.entries()) {
          const t0 = performance.now();
          for (let i = 0; i < args.runs; i++) await s.run(feeds);
          times[k]!.push((performance.now() - t0) / args.runs);
        }
      }
      const [a, b] = [median(times[0]!), median(times[1]!)];
      console.log(`${name}, batch ${batch}, ${threads} thread(s): ${a.toFixed(3)} ms, ${b.toFixed(3)} ms, ${(b / a).toFixed(2)}x`);
      await Promise.all(sessions.map((s) => s.release()));
    }
  }
}
process.exit(0);
