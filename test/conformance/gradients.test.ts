/**
 * Kiln's gradient rules on ONNX's own backend test cases (issue 27, item 3): for every conformance
 * case that passes (not in skips.json) and whose nodes all have gradient rules, the gradient of a
 * loss over the case's float outputs with respect to each differentiable float input (float32 or
 * float64, not in the consuming op's nonDifferentiableInputs), computed by Kiln's gradient graph in
 * ONNX Runtime, is compared with central finite differences run through ONNX Runtime on the forward
 * model — at the case's own input values, shapes and attributes (gradcheck.ts's graphGradientCheck).
 *
 * Precision: each case is first promoted to float64 (inputs, outputs, initializers and Constant
 * tensors of type float become double; float32 values are exact in float64), where h = 1e-6 and the
 * tolerance is 1e-6: the central difference's truncation error is O(h²) and its rounding error
 * ~1e-16·|loss|/h ≈ 1e-10 for O(1)–O(100) losses, while a wrong rule is off by O(1). Where Kiln
 * or ONNX Runtime has no float64 form of an op (Conv, AveragePool, ... have float kernels only) the
 * case runs in float32 with gradcheck.ts's h = 1e-2 and tolerance 2e-2 (see its header for why).
 *
 * Runtime: each perturbed element costs three forward runs, so at most MAX_ELEMENTS (64) elements per
 * input are perturbed, a seeded sample; smaller inputs are checked whole.
 *
 * The cases' inputs sometimes sit on kinks (ReLU at 0, ties in Max or MaxPool, Clip bounds), where
 * no finite difference is defined. A case that fails is classified from the one-sided differences at
 * its failing elements: 'kink' where they differ by at least the mismatch (the function is not
 * differentiable there), 'gradient disagrees' where they agree (the function is smooth there and the
 * rule is wrong). Every case that does not pass is listed in gradient-skips.json with its reason
 * ("<outcome>: why"); the test fails when a case's outcome differs from its entry, or when a listed
 * case now passes. KILN_WRITE_SKIPS=1 regenerates the list from the run (keeping reviewed reasons
 * where the outcome is unchanged).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Graph } from '../../src/graph/graph.js';
import { decodeModel, type ModelProto, type TensorProto } from '../../src/graph/proto.js';
import { noGradientFlows } from '../../src/graph/op-definition.js';
import { DEFAULT_OPSET, tensorFromProto, tensorToProto } from '../../src/graph/onnx-io.js';
import { OLDEST_UPGRADABLE_OPSET, UPGRADED_OPSET, upgradeOpset } from '../../src/graph/opset-upgrade.js';
import { opDefinition } from '../../src/ops/index.js';
import { graphFromProto } from '../../src/optimize/quantize/source-graph.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { Tensor } from '../../src/tensor.js';
import { graphGradientCheck, type InputGradCheck } from '../autodiff/gradcheck.js';
import { defaultOpset, firstMismatch, listCases, readTensors, testDataDir, writeSkipList } from './backend-cases.js';

const SKIPS_FILE = new URL('../../../test/conformance/skips.json', import.meta.url);
const GRADIENT_SKIPS_FILE = new URL('../../../test/conformance/gradient-skips.json', import.meta.url);

/** Elements perturbed per input at most (a seeded sample beyond): the file's runtime cap. */
const MAX_ELEMENTS = 64;
const FLOAT64 = { h: 1e-6, tolerance: 1e-6 };
const FLOAT32 = { h: 1e-2, tolerance: 2e-2 };
const ONNX_FLOAT = 1;
const ONNX_DOUBLE = 11;

/**
 * 'kink': an input on a point where the function is not differentiable; 'not defined': the function
 * or its finite difference is NaN there (x^y for x ≤ 0); 'gradient disagrees': a wrong rule;
 * 'error': no form of the case Kiln can differentiate and ONNX Runtime can run.
 */
type GradOutcome = 'pass' | 'kink' | 'not defined' | 'gradient disagrees' | 'error';

interface GradCaseResult {
  id: string;
  outcome: GradOutcome;
  detail: string;
  ops: string[];
  precision: 'float64' | 'float32';
}

function readJson(url: URL): Record<string, string> {
  return fs.existsSync(url) ? (JSON.parse(fs.readFileSync(url, 'utf8')) as Record<string, string>) : {};
}

function toDouble(t: TensorProto): TensorProto {
  const f = tensorFromProto(t);
  return tensorToProto(t.name ?? '', new Tensor(Float64Array.from(f.data as Float32Array), [...f.shape], 'float64'));
}

/** The model with every float tensor type made double, in place (undefined when nothing was float). */
function promoteToFloat64(proto: ModelProto): ModelProto | undefined {
  const g = proto.graph!;
  let changed = false;
  for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) {
    const tt = v.type?.tensorType;
    if (tt?.elemType === ONNX_FLOAT) {
      tt.elemType = ONNX_DOUBLE;
      changed = true;
    }
  }
  g.initializer = (g.initializer ?? []).map((t) => (t.dataType === ONNX_FLOAT ? toDouble(t) : t));
  for (const node of g.node ?? []) {
    for (const a of node.attribute ?? []) if (a.t?.dataType === ONNX_FLOAT) a.t = toDouble(a.t);
  }
  return changed ? proto : undefined;
}

/** Graph inputs through which a gradient can flow: float, and differentiable at some consumer. */
function differentiableInputs(graph: Graph): string[] {
  return graph.inputs
    .filter((v) => v.dtype === 'float32' || v.dtype === 'float64')
    .filter((v) =>
      graph.nodes.some((n) =>
        n.inputs.some((name, k) => name === v.name && !(opDefinition(n.opType)!.nonDifferentiableInputs ?? []).includes(k)),
      ),
    )
    .map((v) => v.name);
}

/** Why the check of one input fails at the given tolerance, or undefined; 'kink' when every failing element sits on one. */
function judge(name: string, r: InputGradCheck, feed: Tensor, tolerance: number): { outcome: GradOutcome; detail: string } | undefined {
  let scale = 0;
  for (let k = 0; k < r.numeric.length; k++) scale = Math.max(scale, Math.abs(r.numeric[k]!), Math.abs(r.analytic[k]!));
  const bad: number[] = [];
  for (let k = 0; k < r.numeric.length; k++) if (Math.abs(r.analytic[k]! - r.numeric[k]!) > tolerance * Math.max(scale, 1e-6)) bad.push(k);
  if (bad.length === 0 && r.error <= tolerance) return undefined;
  const nan = [...r.numeric.keys()].find((k) => Number.isNaN(r.numeric[k]!) || Number.isNaN(r.analytic[k]!));
  if (nan !== undefined) {
    const i = r.sampled[nan]!;
    return { outcome: 'not defined', detail: `d loss/d ${name}: NaN at element [${i}] (x = ${Number(feed.data[i])}): analytic ${r.analytic[nan]}, central difference ${r.numeric[nan]}` };
  }
  const worst = (bad.length ? bad : [...r.numeric.keys()]).reduce((w, k) => (Math.abs(r.analytic[k]! - r.numeric[k]!) > Math.abs(r.analytic[w]! - r.numeric[w]!) ? k : w));
  const onKinks = bad.length > 0 && bad.every((k) => r.oneSidedGap[k]! >= Math.abs(r.analytic[k]! - r.numeric[k]!));
  const i = r.sampled[worst]!;
  const fmt = (x: number) => x.toPrecision(4);
  return {
    outcome: onKinks ? 'kink' : 'gradient disagrees',
    detail:
      `d loss/d ${name}: ${bad.length} of ${r.sampled.length} sampled elements off, normwise error ${r.error.toExponential(2)}; ` +
      `worst element [${i}] (x = ${fmt(Number(feed.data[i]))}): analytic ${fmt(r.analytic[worst]!)}, central difference ${fmt(r.numeric[worst]!)}, one-sided gap ${fmt(r.oneSidedGap[worst]!)}`,
  };
}

/**
 * The gradient check of one case at one precision and opset; throws when the case cannot be built or
 * run that way, or when the forward model there does not reproduce the case's expected outputs (an
 * op whose meaning changed between the case's opset and the one written).
 */
async function checkAt(runtime: Runtime, proto: ModelProto, dir: string, precision: 'float64' | 'float32', opset: number): Promise<{ outcome: GradOutcome; detail: string }> {
  const graph = graphFromProto(proto);
  if (precision === 'float64') {
    // A float32 output (a Cast) would make the loss float32: no use for h = 1e-6.
    const narrow = graph.outputs.find((y) => y.dtype === 'float32');
    if (narrow) throw new Error(`output '${narrow.name}' stays float32`);
  }
  const data = path.join(dir, 'test_data_set_0');
  const tensors = readTensors(data, 'input').map((t) => tensorFromProto(t.proto));
  const expected = readTensors(data, 'output').map((t) => tensorFromProto(t.proto));
  const feeds: Record<string, Tensor> = {};
  graph.inputs.forEach((v, k) => {
    const t = tensors[k]!;
    feeds[v.name] = v.dtype === 'float64' && t.dtype === 'float32' ? new Tensor(Float64Array.from(t.data as Float32Array), [...t.shape], 'float64') : t;
  });
  const wrt = differentiableInputs(graph);
  const outputNames = graph.outputs.map((y) => y.name);
  const { h, tolerance } = precision === 'float64' ? FLOAT64 : FLOAT32;
  const r = await graphGradientCheck(runtime, { graph, feeds, wrt, h, maxElements: MAX_ELEMENTS, opset });
  outputNames.forEach((name, k) => {
    const got = r.outputs[name]!;
    const want = expected[k]!;
    const float = want.dtype === 'float32' || want.dtype === 'float64';
    const at = firstMismatch(got.data as ArrayLike<number>, want.data as ArrayLike<number>, float);
    if (at >= 0) throw new Error(`opset ${opset}: the forward model's output '${name}' differs from the expected one at element ${at}`);
  });
  const failures = wrt.map((n) => judge(n, r.inputs[n]!, feeds[n]!, tolerance)).filter((f) => f !== undefined);
  if (failures.length === 0) return { outcome: 'pass', detail: '' };
  const worst = (['gradient disagrees', 'not defined', 'kink'] as const).find((o) => failures.some((f) => f.outcome === o))!;
  return { outcome: worst, detail: `${precision}, opset ${opset}: ${failures.map((f) => f.detail).join('; ')}` };
}

/** The passing conformance cases whose nodes all have gradient rules and that have a differentiable float input. */
function gradientCases(): { id: string; dir: string; ops: string[] }[] {
  const skips = readJson(SKIPS_FILE);
  const out: { id: string; dir: string; ops: string[] }[] = [];
  for (const c of listCases()) {
    if (skips[c.id] !== undefined) continue;
    const proto = decodeModel(fs.readFileSync(path.join(c.dir, 'model.onnx')));
    const ops = [...new Set((proto.graph?.node ?? []).map((n) => n.opType ?? ''))].sort();
    if (!ops.every((op) => opDefinition(op)?.gradient)) continue;
    // Only rounding, comparisons, shapes: no gradient flows, and addGradients refuses a loss that depends on nothing.
    if (ops.every((op) => opDefinition(op)!.gradient === noGradientFlows)) continue;
    const graph = graphFromProto(proto);
    if (!graph.outputs.some((y) => y.dtype === 'float32' || y.dtype === 'float64')) continue;
    if (differentiableInputs(graph).length === 0) continue;
    out.push({ ...c, ops });
  }
  return out;
}

const runtime = new Runtime();
after(() => runtime.close());

const dataPresent = fs.existsSync(testDataDir());

describe('gradients on the ONNX backend test cases', () => {
  // Without the data, onnx-backend.test.ts reports it (and fails under CI); nothing to check here.
  it('every gradient rule matches finite differences on the cases\' own inputs, or gradient-skips.json says why not', { skip: !dataPresent && 'ONNX backend test data not installed' }, async () => {
    const started = Date.now();
    const skips = readJson(GRADIENT_SKIPS_FILE);
    const results: GradCaseResult[] = [];
    for (const c of gradientCases()) {
      const read = () => decodeModel(fs.readFileSync(path.join(c.dir, 'model.onnx')));
      // float64 first, then float32; the case's opset first, then Kiln's (gradient rules emit opset-13+
      // forms such as Unsqueeze's axes input, which older opsets reject), a case older than 13 upgraded
      // to 13 first as GraphModel loads such files (graph/opset-upgrade.ts; opset 1's few cases have
      // nothing to upgrade and are written as they are).
      const caseOpset = defaultOpset(read());
      const attempts: ['float64' | 'float32', number][] = [];
      for (const precision of ['float64', 'float32'] as const) for (const opset of new Set([caseOpset, Math.max(caseOpset, DEFAULT_OPSET)])) attempts.push([precision, opset]);
      let result: GradCaseResult | undefined;
      const errors: string[] = [];
      for (const [precision, opset] of attempts) {
        const promoted = precision === 'float64' ? promoteToFloat64(read()) : read();
        if (!promoted) continue;
        try {
          const upgradable = caseOpset >= OLDEST_UPGRADABLE_OPSET && caseOpset < UPGRADED_OPSET;
          const proto = opset > caseOpset && upgradable ? upgradeOpset(promoted, { file: c.id }) : promoted;
          result = { id: c.id, ops: c.ops, precision, ...(await checkAt(runtime, proto, c.dir, precision, opset)) };
          break;
        } catch (err) {
          errors.push(`${precision}, opset ${opset}: ${(err as Error).message.split('\n')[0]!}`);
        }
      }
      // The float32 attempts' errors say why the case cannot be checked at all.
      result ??= { id: c.id, ops: c.ops, precision: 'float32', outcome: 'error', detail: errors.filter((e) => e.startsWith('float32')).join('; ') };
      results.push(result);
    }

    const problems: string[] = [];
    for (const r of results) {
      const listed = skips[r.id];
      if (r.outcome === 'pass') {
        if (listed !== undefined) problems.push(`${r.id} now passes: remove it from gradient-skips.json`);
        continue;
      }
      const got = `${r.outcome}: ${r.detail}`;
      if (listed === undefined) problems.push(`${r.id}: ${got} (not in gradient-skips.json)`);
      else if (!listed.startsWith(`${r.outcome}:`)) problems.push(`${r.id}: ${got}; gradient-skips.json expects '${listed}'`);
    }
    const known = new Set(results.map((r) => r.id));
    for (const id of Object.keys(skips)) if (!known.has(id)) problems.push(`${id} is in gradient-skips.json but is not a gradient-checked case`);

    const passed = results.filter((r) => r.outcome === 'pass');
    const ops = new Set(passed.flatMap((r) => r.ops));
    const float64 = passed.filter((r) => r.precision === 'float64').length;
    console.log(`gradient-checked on their own inputs: ${passed.length} cases of ${ops.size} ops (${results.length - passed.length} cases skipped with reasons)`);
    console.log(`  ${float64} in float64, ${passed.length - float64} in float32; ops: ${[...ops].sort().join(', ')}; ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (process.env.GRADCHECK_VERBOSE) for (const r of results) console.log(`  ${r.id} [${r.precision}] ${r.outcome} ${r.detail}`);

    if (process.env.KILN_WRITE_SKIPS === '1') writeSkipList(GRADIENT_SKIPS_FILE, results, skips);
    assert.deepEqual(problems, [], `${problems.length} case(s) differ from gradient-skips.json:\n${problems.join('\n')}`);
  });
});
