import path from 'node:path';
import { KilnError } from '../../errors.js';
import { MODEL_KEY_ENV } from '../../model/encryption.js';
import { SERVER_VERSION } from '../health.js';
import { writeOutputDirectory, type OutputFiles } from './output-directory.js';
import { readRepository } from './repository.js';
import type { DeployResult } from './triton.js';
import { toYaml, type YamlValue } from './yaml.js';

/*
 * `kiln deploy kserve`: Kiln as a KServe serving runtime. A Dockerfile (Node 24 slim, `kiln serve`
 * as a non-root user, HTTP on 8080 and gRPC on 8081, models from /mnt/models where KServe's storage
 * initializer puts them), a ClusterServingRuntime speaking the v2 protocol for ONNX models, and an
 * InferenceService for the repository with autoscaling settings. The server takes the same settings
 * from the environment (KILN_MODEL_REPOSITORY, KILN_PORT or Knative's PORT, KILN_GRPC_PORT,
 * KILN_HOST: see cli/serve.ts), and its probes are the v2 health routes.
 */

export interface DeployKServeOptions {
  modelRepository: string;
  out: string;
  /** InferenceService name (a DNS label; default: from the repository directory's name). */
  name?: string;
  /** The container image the Dockerfile is built as (default kiln-serve:<version>). */
  image?: string;
  /** Where KServe's storage initializer fetches the repository from (default pvc://<name>-models/). */
  storageUri?: string;
  minReplicas?: number;
  maxReplicas?: number;
  /** Concurrent requests per replica the autoscaler aims for. */
  scaleTarget?: number;
}

export const HTTP_PORT = 8080;
export const GRPC_PORT = 8081;
const MODEL_DIR = '/mnt/models';
const RUNTIME = 'kiln';

/** A DNS-1123 label from a directory name: lower case, [a-z0-9-], at most 63 characters. */
function dnsLabel(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '');
}

function checkCount(value: number, what: string, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new KilnError('INVALID_ARGUMENT', `${what} must be an integer >= ${min}, got ${value}`);
  return value;
}

export function dockerfile(): string {
  return `# kiln serve as a KServe runtime (written by kiln deploy kserve).
# Build context: this directory with the Kiln package tarball as kiln.tgz beside this file
# (\`npm pack\` in Kiln's repository, or in node_modules/kiln of a project that depends on it).
FROM node:24-slim
ENV NODE_ENV=production \\
    ONNXRUNTIME_NODE_INSTALL=skip \\
    KILN_MODEL_REPOSITORY=${MODEL_DIR} \\
    KILN_HOST=0.0.0.0 \\
    KILN_PORT=${HTTP_PORT} \\
    KILN_GRPC_PORT=${GRPC_PORT}
COPY kiln.tgz /tmp/kiln.tgz
RUN npm install --global /tmp/kiln.tgz && rm /tmp/kiln.tgz && npm cache clean --force
# The node image's unprivileged user (uid 1000); the server needs no write access anywhere.
USER 1000:1000
EXPOSE ${HTTP_PORT} ${GRPC_PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \\
  CMD ["node", "-e", "fetch('http://127.0.0.1:${HTTP_PORT}/v2/health/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["kiln", "serve"]
`;
}

const probe = (route: string, extra: Record<string, number>): YamlValue => ({ httpGet: { path: route, port: HTTP_PORT }, ...extra });

export function servingRuntime(image: string, encrypted: boolean): YamlValue {
  return {
    apiVersion: 'serving.kserve.io/v1alpha1',
    kind: 'ClusterServingRuntime',
    metadata: { name: RUNTIME },
    spec: {
      annotations: { 'prometheus.kserve.io/port': String(HTTP_PORT), 'prometheus.kserve.io/path': '/metrics' },
      supportedModelFormats: [{ name: 'onnx', version: '1', autoSelect: true }],
      protocolVersions: ['v2', 'grpc-v2'],
      containers: [
        {
          name: 'kserve-container',
          image,
          args: ['--model-repository', MODEL_DIR, '--host', '0.0.0.0', '--port', String(HTTP_PORT), '--grpc-port', String(GRPC_PORT)],
          ...(encrypted ? { env: [{ name: MODEL_KEY_ENV, valueFrom: { secretKeyRef: { name: 'kiln-model-key', key: 'key' } } }] } : {}),
          ports: [{ containerPort: HTTP_PORT, protocol: 'TCP' }],
          // Models load before the server listens: the startup probe gives them five minutes.
          startupProbe: probe('/v2/health/live', { periodSeconds: 5, failureThreshold: 60 }),
          livenessProbe: probe('/v2/health/live', { periodSeconds: 10, failureThreshold: 3 }),
          readinessProbe: probe('/v2/health/ready', { periodSeconds: 5, failureThreshold: 2 }),
          resources: { requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '2', memory: '2Gi' } },
          securityContext: { runAsNonRoot: true, runAsUser: 1000, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

export function inferenceService(name: string, storageUri: string, replicas: { min: number; max: number; target: number }): YamlValue {
  return {
    apiVersion: 'serving.kserve.io/v1beta1',
    kind: 'InferenceService',
    metadata: { name },
    spec: {
      predictor: {
        minReplicas: replicas.min,
        maxReplicas: replicas.max,
        scaleMetric: 'concurrency',
        scaleTarget: replicas.target,
        model: { modelFormat: { name: 'onnx' }, protocolVersion: 'v2', runtime: RUNTIME, storageUri },
      },
    },
  };
}

/** Writes the Dockerfile and manifests to `out` (new or empty), all or nothing. */
export async function deployKServe(options: DeployKServeOptions): Promise<DeployResult> {
  const models = await readRepository(options.modelRepository);
  const name = options.name ?? dnsLabel(path.basename(path.resolve(options.modelRepository)));
  if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name)) {
    throw new KilnError('INVALID_ARGUMENT', `InferenceService name ${JSON.stringify(name)} must be a DNS label: lower-case letters, digits and '-', starting with a letter, at most 63 (give --name)`);
  }
  const min = checkCount(options.minReplicas ?? 1, '--min-replicas', 0);
  const max = checkCount(options.maxReplicas ?? 4, '--max-replicas', 1);
  if (max < min) throw new KilnError('INVALID_ARGUMENT', `--max-replicas ${max} is below --min-replicas ${min}`);
  const target = checkCount(options.scaleTarget ?? 64, '--scale-target', 1);
  const image = options.image ?? `kiln-serve:${SERVER_VERSION}`;
  const storageUri = options.storageUri ?? `pvc://${name}-models/`;
  const encrypted = models.some((m) => m.versions.some((v) => v.encrypted));
  const notes: string[] = [];
  if (encrypted) notes.push(`the repository holds encrypted models: create the Secret the runtime reads their key from (kubectl create secret generic kiln-model-key --from-file=key=MODEL_KEY_FILE)`);
  if (options.storageUri === undefined) notes.push(`storageUri is ${storageUri}: copy the repository there (its <model>/<version>/ folders at the top), or give --storage-uri (s3://, gs://, pvc://...)`);
  const files: OutputFiles = new Map([
    ['Dockerfile', dockerfile()],
    ['.dockerignore', '*\n!kiln.tgz\n'],
    ['serving-runtime.yaml', toYaml(servingRuntime(image, encrypted), [`Kiln as a KServe serving runtime for ONNX models (kiln deploy kserve). Image: docker build -t ${image} .`, `gRPC instead of HTTP: set the container port to ${GRPC_PORT} with name h2c.`])],
    ['inference-service.yaml', toYaml(inferenceService(name, storageUri, { min, max, target }), [`Models: ${models.map((m) => m.name).join(', ')} (from ${options.modelRepository}).`])],
  ]);
  return { files: await writeOutputDirectory(options.out, files), notes };
}
