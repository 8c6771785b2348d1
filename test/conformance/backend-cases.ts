/**
 * Runs ONNX's own backend test cases (Debian's libonnx-testdata) through Kiln, as a new user's model
 * would go: the case's model.onnx rebuilt as a Kiln Graph by the importer `kiln quantize` uses
 * (graphFromProto), every inferred output shape compared with the expected output's shape, then
 * Kiln's graph written back to ONNX bytes and run in onnxruntime-node on the case's inputs, so the
 * nodes Kiln emits are checked as well as its shape rules.
 *
 * Each case ends in one outcome. Only 'pass' is a pass; every other outcome must be listed, with its
 * reason, in skips.json (see onnx-backend.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { formatShape } from '../../src/errors.js';
import type { Graph, Shape } from '../../src/graph/graph.js';
import { modelToProto, tensorFromProto } from '../../src/graph/onnx-io.js';
import { decodeModel, decodeTensor, encodeModel, type ModelProto } from '../../src/graph/proto.js';
import { opDefinition } from '../../src/ops/index.js';
import { graphFromProto } from '../../src/optimize/quantize/source-graph.js';
import type { Tensor } from '../../src/tensor.js';

/** Where Debian's libonnx-testdata puts the cases; ONNX_BACKEND_TEST_DATA overrides it. */
export const DEFAULT_TESTDATA_DIR = '/usr/share/libonnx-testdata/data';
/** The suites walked ('real' holds large downloaded models, not single ops). */
export const SUITES = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;

/** ONNX's backend-test tolerances (onnx/backend/test/case/test_case.py). */
export const RTOL = 1e-3;
export const ATOL = 1e-7;

export type Outcome =
  /** shapes agree and ONNX Runtime reproduces the expected outputs */
  | 'pass'
  /** an operator (or domain) Kiln has no shape rule for */
  | 'op not supported'
  /** an element type Kiln tensors do not carry, or a non-tensor (sequence, optional) value */
  | 'dtype'
  /** Kiln cannot determine an output's shape statically (it depends on input values) */
  | 'dynamic shape'
  /** Kiln infers a static shape that differs from the expected one: a wrong shape rule */
  | 'shape disagrees'
  /** Kiln refuses a valid model while building it (a shape rule too strict) */
  | 'import error'
  /** ONNX Runtime fails on the graph Kiln writes */
  | 'runtime error'
  /** ONNX Runtime's outputs on Kiln's graph differ from the expected ones */
  | 'values differ';

export interface CaseResult {
  id: string;
  outcome: Outcome;
  detail: string;
  /** ops of the case's model */
  ops: string[];
}

export function testDataDir(): string {
  return process.env.ONNX_BACKEND_TEST_DATA ?? DEFAULT_TESTDATA_DIR;
}

/** Case ids ('suite/test_name') with their directories, in a stable order. */
export function listCases(root = testDataDir()): { id: string; dir: string }[] {
  const cases: { id: string; dir: string }[] = [];
  for (const suite of SUITES) {
    const suiteDir = path.join(root, suite);
    if (!fs.existsSync(suiteDir)) continue;
    for (const name of fs.readdirSync(suiteDir).sort()) {
      const dir = path.join(suiteDir, name);
      if (fs.existsSync(path.join(dir, 'model.onnx'))) cases.push({ id: `${suite}/${name}`, dir });
    }
  }
  return cases;
}

export function readTensors(dir: string, prefix: 'input' | 'output'): { proto: ReturnType<typeof decodeTensor>; bytes: number }[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${prefix}_`) && f.endsWith('.pb'))
    .sort((a, b) => Number(a.slice(prefix.length + 1, -3)) - Number(b.slice(prefix.length + 1, -3)));
  return files.map((f) => {
    const bytes = fs.readFileSync(path.join(dir, f));
    return { proto: decodeTensor(bytes), bytes: bytes.length };
  });
}

export function defaultOpset(proto: ModelProto): number {
  const entry = (proto.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
  return Number(entry?.version ?? 1);
}

/** Error text → outcome, for what the importer refuses. */
function classifyImportError(message: string): Outcome {
  if (/element type|not a tensor|Kiln tensors carry/.test(message)) return 'dtype';
  return 'import error';
}

function isStatic(shape: Shape | null): shape is number[] {
  return shape !== null && shape.every((d) => typeof d === 'number');
}

function toOrt(t: Tensor): ort.Tensor {
  const type = t.dtype === 'float32' ? 'float32' : t.dtype === 'float64' ? 'float64' : t.dtype;
  return new ort.Tensor(type as 'float32', t.data as Float32Array, [...t.shape]);
}

/** First element (flat index) where actual and expected differ beyond ONNX's tolerances, or -1. */
export function firstMismatch(actual: ArrayLike<number | bigint | boolean>, expected: ArrayLike<number | bigint | boolean>, float: boolean): number {
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    if (!float) {
      if (Number(a) !== Number(e)) return i;
      continue;
    }
    const x = Number(a);
    const y = Number(e);
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue; // infinities
    if (!(Math.abs(x - y) <= ATOL + RTOL * Math.abs(y))) return i;
  }
  return -1;
}

/** The case's model as a Kiln Graph, or the outcome that stops it. */
export function importCase(dir: string): { graph: Graph; proto: ModelProto; ops: string[] } | { outcome: Outcome; detail: string; ops: string[] } {
  const proto = decodeModel(fs.readFileSync(path.join(dir, 'model.onnx')));
  const nodes = proto.graph?.node ?? [];
  const ops = [...new Set(nodes.map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : (n.opType ?? ''))))].sort();
  const missing = ops.filter((op) => !opDefinition(op));
  if (missing.length > 0) return { outcome: 'op not supported', detail: missing.join(', '), ops };
  try {
    return { graph: graphFromProto(proto), proto, ops };
  } catch (err) {
    const message = (err as Error).message;
    return { outcome: classifyImportError(message), detail: message, ops };
  }
}

/** Runs one case to its outcome. */
export async function runCase(id: string, dir: string): Promise<CaseResult> {
  const imported = importCase(dir);
  if ('outcome' in imported) return { id, outcome: imported.outcome, detail: imported.detail, ops: imported.ops };
  const { graph, proto, ops } = imported;
  const dataDir = path.join(dir, 'test_data_set_0');
  const result = (outcome: Outcome, detail: string): CaseResult => ({ id, outcome, detail, ops });

  let inputs: Tensor[];
  let expected: Tensor[];
  try {
    inputs = readTensors(dataDir, 'input').map((t) => tensorFromProto(t.proto));
    expected = readTensors(dataDir, 'output').map((t) => tensorFromProto(t.proto));
  } catch (err) {
    return result('dtype', `test data: ${(err as Error).message}`);
  }

  // Shapes first: a rule that infers a wrong static shape is the worst failure, whatever runs.
  const dynamic: string[] = [];
  for (let k = 0; k < graph.outputs.length; k++) {
    const out = graph.outputs[k]!;
    const want = expected[k]?.shape ?? [];
    if (!isStatic(out.shape)) {
      const known = out.shape;
      const compatible = known === null || (known.length === want.length && known.every((d, i) => typeof d !== 'number' || d === want[i]));
      if (!compatible) return result('shape disagrees', `output '${out.name}': Kiln ${formatShape(known!)}, expected ${formatShape(want)}`);
      dynamic.push(`output '${out.name}': Kiln ${known ? formatShape(known) : 'unknown'}, expected ${formatShape(want)}`);
      continue;
    }
    if (out.shape.length !== want.length || out.shape.some((d, i) => d !== want[i])) {
      return result('shape disagrees', `output '${out.name}': Kiln ${formatShape(out.shape)}, expected ${formatShape(want)}`);
    }
    if (expected[k]!.dtype !== out.dtype) return result('shape disagrees', `output '${out.name}': Kiln ${out.dtype}, expected ${expected[k]!.dtype}`);
  }

  // Then Kiln's own graph, written back at the case's opset, in ONNX Runtime.
  let session: ort.InferenceSession;
  try {
    const bytes = encodeModel(modelToProto(graph, {}, defaultOpset(proto)));
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'basic', logSeverityLevel: 3 });
  } catch (err) {
    return result('runtime error', `opset ${defaultOpset(proto)}: ${(err as Error).message.split('\n')[0]!}`);
  }
  try {
    const feeds: Record<string, ort.Tensor> = {};
    graph.inputs.forEach((v, k) => {
      if (inputs[k]) feeds[v.name] = toOrt(inputs[k]!);
    });
    const outputs = await session.run(feeds);
    for (let k = 0; k < graph.outputs.length; k++) {
      const name = graph.outputs[k]!.name;
      const got = outputs[name]!;
      const want = expected[k]!;
      if (got.dims.length !== want.shape.length || got.dims.some((d, i) => d !== want.shape[i])) {
        return result('values differ', `output '${name}': ONNX Runtime gave shape [${got.dims.join(', ')}], expected ${formatShape(want.shape)}`);
      }
      const float = want.dtype === 'float32' || want.dtype === 'float64';
      const at = firstMismatch(got.data as ArrayLike<number>, want.data as ArrayLike<number>, float);
      if (at >= 0) return result('values differ', `output '${name}' element ${at}: ${String(got.data[at])}, expected ${String(want.data[at])}`);
    }
  } catch (err) {
    return result('runtime error', (err as Error).message.split('\n')[0]!);
  } finally {
    await session.release();
  }
  if (dynamic.length > 0) return result('dynamic shape', dynamic.join('; '));
  return result('pass', '');
}

/**
 * Rewrites a skip list from a run (KILN_WRITE_SKIPS=1): every case that did not pass, keeping a
 * reviewed reason where the outcome is unchanged.
 */
export function writeSkipList(file: string | URL, results: readonly { id: string; outcome: string; detail: string }[], listed: Readonly<Record<string, string>>): void {
  const next: Record<string, string> = {};
  for (const r of results) {
    if (r.outcome === 'pass') continue;
    const reason = listed[r.id];
    next[r.id] = reason?.startsWith(`${r.outcome}:`) ? reason : `${r.outcome}: ${r.detail}`;
  }
  fs.writeFileSync(file, `${JSON.stringify(next, null, 1)}\n`);
}
