import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { BatchObserver } from './batcher.js';
import type { ModelRegistry } from './registry.js';

/*
 * Prometheus metrics, named after Triton's (nv_inference_*) with Prometheus units: per model and
 * version, requests that succeeded and failed, rows inferred (inference_count) and ONNX Runtime runs
 * (exec_count; their ratio is the average batch size), and request, queue and compute durations;
 * plus the process metrics prom-client collects. Each server has its own registry.
 */

const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the inference path reports for one model version. */
export interface VersionMetrics extends BatchObserver {
  succeeded(seconds: number): void;
  failed(reason: string, seconds: number): void;
}

export class ServeMetrics {
  readonly registry = new Registry();
  private readonly success: Counter<'model' | 'version'>;
  private readonly failure: Counter<'model' | 'version' | 'reason'>;
  private readonly inferences: Counter<'model' | 'version'>;
  private readonly executions: Counter<'model' | 'version'>;
  private readonly requestDuration: Histogram<'model' | 'version'>;
  private readonly queueDuration: Histogram<'model' | 'version'>;
  private readonly computeDuration: Histogram<'model' | 'version'>;

  constructor(models: () => ModelRegistry | undefined) {
    const registers = [this.registry];
    const labelNames = ['model', 'version'] as const;
    this.success = new Counter({ name: 'kiln_inference_request_success_total', help: 'Inference requests answered successfully', labelNames, registers });
    this.failure = new Counter({
      name: 'kiln_inference_request_failure_total',
      help: 'Inference requests that failed, by reason (bad_request, queue_full, timeout, unavailable, internal)',
      labelNames: [...labelNames, 'reason'],
      registers,
    });
    this.inferences = new Counter({ name: 'kiln_inference_count_total', help: 'Rows (batch elements) inferred', labelNames, registers });
    this.executions = new Counter({
      name: 'kiln_inference_exec_count_total',
      help: 'ONNX Runtime runs; kiln_inference_count_total / this = average batch size',
      labelNames,
      registers,
    });
    this.requestDuration = new Histogram({ name: 'kiln_inference_request_duration_seconds', help: 'Inference request time from routing to reply', labelNames, buckets: DURATION_BUCKETS, registers });
    this.queueDuration = new Histogram({ name: 'kiln_inference_queue_duration_seconds', help: 'Time a request waited in the batching queue', labelNames, buckets: DURATION_BUCKETS, registers });
    this.computeDuration = new Histogram({ name: 'kiln_inference_compute_duration_seconds', help: 'Duration of one ONNX Runtime run (one batch)', labelNames, buckets: DURATION_BUCKETS, registers });
    new Gauge({
      name: 'kiln_inference_pending_requests',
      help: 'Requests waiting in a version queue',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const v of models()?.versions() ?? []) if (v.batcher && v.state === 'AVAILABLE') this.set({ model: v.model, version: String(v.version) }, v.batcher.queued);
      },
    });
    new Gauge({
      name: 'kiln_model_version_ready',
      help: '1 while a model version is AVAILABLE, else 0',
      labelNames,
      registers,
      collect() {
        this.reset();
        for (const v of models()?.versions() ?? []) this.set({ model: v.model, version: String(v.version) }, v.state === 'AVAILABLE' ? 1 : 0);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  forVersion(model: string, version: number): VersionMetrics {
    const labels = { model, version: String(version) };
    const success = this.success.labels(labels);
    const inferences = this.inferences.labels(labels);
    const executions = this.executions.labels(labels);
    const requestDuration = this.requestDuration.labels(labels);
    const queueDuration = this.queueDuration.labels(labels);
    const computeDuration = this.computeDuration.labels(labels);
    return {
      succeeded: (seconds) => {
        success.inc();
        requestDuration.observe(seconds);
      },
      failed: (reason, seconds) => {
        this.failure.labels({ ...labels, reason }).inc();
        requestDuration.observe(seconds);
      },
      queued: (seconds) => queueDuration.observe(seconds),
      executed: (rows, _requests, seconds) => {
        inferences.inc(rows);
        executions.inc();
        computeDuration.observe(seconds);
      },
    };
  }
}

/** GET /metrics in Prometheus' text format (no auth: scrapers and probes call it). */
export async function metricsRoutes(app: FastifyInstance, opts: { metrics: ServeMetrics }): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const text = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(text);
  });
}
