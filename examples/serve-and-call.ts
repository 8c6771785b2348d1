/**
 * Serve a model and call it: lay the model out as a Triton-style model repository (with a config.json
 * naming the classes, a version label and dynamic batching), start `kiln.serve` on a free port, call it
 * through Kiln's KServe v2 client, through plain HTTP in the TF Serving REST format, and read its
 * Prometheus metrics; then shut it down gracefully.
 *
 *     node dist/examples/serve-and-call.js [--model fashion-cnn.onnx] [--repository model-repository]
 *
 * The same server from the command line: `npx kiln serve --model-repository model-repository`.
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as kiln from 'kiln';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'fashion-cnn.onnx' },
    repository: { type: 'string', default: 'model-repository' },
  },
});

// <repository>/<model name>/<version>/model.onnx, and the model's config.json beside its versions.
const { test, classNames } = await kiln.datasets.embedded();
await mkdir(join(args.repository, 'fashion', '1'), { recursive: true });
await copyFile(args.model, join(args.repository, 'fashion', '1', 'model.onnx'));
const config: Partial<kiln.ModelConfig> = {
  maxBatchSize: 32, // above 1: concurrent requests are merged into runs of up to 32 rows
  maxQueueDelayMs: 2, // how long a request may wait for others to join its batch
  labels: classNames, // class names for TF Serving's :classify
  topK: 3,
  versionLabels: { stable: 1 }, // /v1/models/fashion/labels/stable
};
await writeFile(join(args.repository, 'fashion', 'config.json'), JSON.stringify(config, null, 2));

const server = await kiln.serve({ modelRepository: args.repository, port: 0, logLevel: 'warn' });
console.log(`serving at ${server.url}`);
try {
  // Kiln's client speaks KServe v2 (also to Triton and KServe). predict() sends [N, 28, 28, 1] images.
  const client = kiln.client(server.url);
  console.log(`ready: ${await client.ready()}`);
  const metadata = await client.modelMetadata('fashion');
  console.log(`model inputs: ${metadata.inputs.map((i) => `${i.name} ${i.datatype} [${i.shape.join(', ')}]`).join('; ')}`);
  const logits = await client.predict('fashion', test.images.slice(0, 8));
  const predicted = kiln.metrics.predictedLabels(logits);
  console.log(`KServe v2: ${[...predicted].map((c) => classNames[c]).join(', ')}`);

  // The same request with Triton's binary tensor extension: raw float32 bytes instead of JSON numbers.
  const input = metadata.inputs[0]!.name;
  const binary = await client.infer('fashion', { [input]: test.images.slice(0, 8) }, { binary: true });
  console.log(`binary tensors: output shape [${Object.values(binary)[0]!.shape.join(', ')}]`);

  // TF Serving's REST API with plain fetch: :predict in the row format, :classify with the config's labels.
  const rows = test.images.slice(0, 2).toArray();
  const predictReply = await fetch(`${server.url}/v1/models/fashion:predict`, { method: 'POST', body: JSON.stringify({ instances: rows }) });
  const { predictions } = (await predictReply.json()) as { predictions: number[][] };
  console.log(`TF Serving :predict: ${predictions.length} rows of ${predictions[0]!.length} scores`);
  const classifyReply = await fetch(`${server.url}/v1/models/fashion/labels/stable:classify`, {
    method: 'POST',
    body: JSON.stringify({ examples: rows.map((row) => ({ [input]: row })) }),
  });
  const { results } = (await classifyReply.json()) as { results: [string, number][][] };
  console.log(`TF Serving :classify, top ${config.topK}: ${results[0]!.map(([label, score]) => `${label} ${score.toFixed(2)}`).join(', ')}`);

  // Prometheus metrics: requests, rows, runs (rows / runs is the average batch size), latencies.
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  const requests = metrics.split('\n').filter((line) => line.startsWith('kiln_inference_request_success_total{'));
  console.log(`metrics: ${requests.join('; ')}`);
} finally {
  // Stops accepting connections, answers what was sent, finishes what runs, unloads the models.
  await server.close();
  console.log('server closed');
}
