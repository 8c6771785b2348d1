/**
 * Real processes: the built CLI (`node dist/src/cli/bin.js federate ...`) as a coordinator and three
 * clients on loopback, each client with its own small IDX data set on disk. Three rounds end to end
 * (the final model loads and changed), and a coordinator killed with SIGKILL after a round and started
 * again on the same port resumes from its checkpoint while the clients wait and reconnect. Every wait
 * is on a line the processes print or on their exit, never on a sleep.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { getWeights, type ModelWeights } from '../../src/federated/weights.js';
import { layers, loadModel, sequential } from '../../src/index.js';
import { idxFile, makeTempDir } from '../data/fixtures.js';
import { TOKENS } from './helpers.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'bin.js');
const SIDE = 8;

/** A client's IDX directory: 60 training and 12 test images of 3 classes (a bright block per class), drawn from `seed`. */
async function writeClientData(dir: string, seed: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  let state = seed;
  const next = () => ((state = (state * 1103515245 + 12345) % 2147483648), state / 2147483648);
  for (const [stem, count] of [['train', 60], ['t10k', 12]] as const) {
    const pixels = new Uint8Array(count * SIDE * SIDE);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const label = (i + seed) % 3;
      labels[i] = label;
      for (let p = 0; p < SIDE * SIDE; p++) {
        const inBlock = Math.floor(p / SIDE) >= label * 2 && Math.floor(p / SIDE) < label * 2 + 3;
        pixels[i * SIDE * SIDE + p] = inBlock ? 180 + Math.floor(next() * 70) : Math.floor(next() * 60);
      }
    }
    await writeFile(join(dir, `${stem}-images-idx3-ubyte`), idxFile(0x00000803, [count, SIDE, SIDE], pixels));
    await writeFile(join(dir, `${stem}-labels-idx1-ubyte`), idxFile(0x00000801, [count], labels));
  }
}

/** A CLI process with its output collected, and a wait for the first line matching a pattern. */
class Proc {
  readonly child: ChildProcess;
  output = '';
  private readonly listeners: (() => void)[] = [];
  readonly exited: Promise<number | null>;
  constructor(args: string[]) {
    this.child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const take = (chunk: Buffer) => {
      this.output += chunk.toString('utf8');
      for (const l of [...this.listeners]) l();
    };
    this.child.stdout!.on('data', take);
    this.child.stderr!.on('data', take);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => {
      for (const l of [...this.listeners]) l();
      resolve(code);
    }));
  }
  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = this.output.match(pattern);
        if (m) {
          this.listeners.splice(this.listeners.indexOf(check), 1);
          resolve(m);
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          this.listeners.splice(this.listeners.indexOf(check), 1);
          reject(new Error(`the process exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${pattern}; its output:\n${this.output}`));
        }
      };
      this.listeners.push(check);
      check();
    });
  }
  async succeeds(): Promise<string> {
    const code = await this.exited;
    assert.equal(code, 0, `exit code ${code}; output:\n${this.output}`);
    return this.output;
  }
}

function maxDifference(a: ModelWeights, b: ModelWeights): number {
  let worst = 0;
  a.forEach((w, k) => w.data.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - b[k]!.data[i]!)))));
  return worst;
}

describe('kiln federate serve and join as separate processes', { timeout: 600_000 }, () => {
  let dir: string;
  let remove: () => Promise<void>;
  let modelFile: string;
  let tokensFile: string;
  let start: ModelWeights;
  const clients = ['alice', 'bob', 'carol'];
  before(async () => {
    ({ dir, remove } = await makeTempDir());
    modelFile = join(dir, 'start.onnx');
    const model = sequential({ seed: 3, layers: [layers.flatten({ inputShape: [SIDE, SIDE, 1] }), layers.dense({ units: 3 })] });
    await writeFile(modelFile, model.toOnnx());
    start = getWeights(model);
    tokensFile = join(dir, 'tokens.txt');
    await writeFile(tokensFile, `# client-id token\n${clients.map((c) => `${c} ${TOKENS[c]}`).join('\n')}\n`);
    await Promise.all(clients.map((c, k) => writeClientData(join(dir, c), 11 + k)));
  });
  after(() => remove());

  const coordinatorArgs = (checkpointDir: string, port: number) => ['federate', 'serve', '--model', modelFile, '--tokens', tokensFile, '--rounds', '3', '--clients-per-round', '3', '--min-clients', '3', '--port', String(port), '--checkpoint-dir', checkpointDir, '--lr', '0.1', '--batch-size', '16'];
  const startClients = (url: string) => clients.map((c) => new Proc(['federate', 'join', url, '--dataset', join(dir, c), '--token', TOKENS[c]!, '--retry-timeout', '300']));

  it('a coordinator and 3 client processes run 3 rounds; the final model loads and was updated', async () => {
    const coordinator = new Proc(coordinatorArgs(join(dir, 'run'), 0));
    const url = (await coordinator.waitFor(/Coordinator listening on (http:\/\/\S+)/))[1]!;
    const joined = startClients(url);
    const printed = await coordinator.succeeds();
    for (const c of joined) assert.match(await c.succeeds(), /Done: the coordinator finished after round 3; this client \((alice|bob|carol)\) trained in 3 rounds/);
    assert.match(printed, /Round 1\/3: aggregated 3 updates \(alice, bob, carol; 180 examples\)/);
    assert.match(printed, /Round 3\/3: aggregated 3 updates/);
    const final = getWeights((await loadModel(join(dir, 'run', 'global.onnx'))) as never);
    assert.ok(maxDifference(final, start) > 1e-3, 'the global model did not change');
  });

  it('a coordinator killed after a round resumes from its checkpoint on restart; the clients reconnect', async () => {
    const first = new Proc(coordinatorArgs(join(dir, 'killed'), 0));
    const port = Number((await first.waitFor(/Coordinator listening on http:\/\/127\.0\.0\.1:(\d+)/))[1]);
    const joined = startClients(`http://127.0.0.1:${port}`);
    await first.waitFor(/Round 1\/3: aggregated/);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = new Proc(coordinatorArgs(join(dir, 'killed'), port));
    const resumed = Number((await second.waitFor(/resumed after round (\d+)/))[1]);
    assert.ok(resumed >= 1 && resumed <= 3, `resumed after round ${resumed}`);
    const printed = await second.succeeds();
    for (const c of joined) await c.succeeds();
    const rounds = [...printed.matchAll(/Round (\d)\/3: aggregated/g)].map((m) => Number(m[1]));
    assert.deepEqual(rounds, [1, 2, 3].filter((r) => r > resumed));
    const final = getWeights((await loadModel(join(dir, 'killed', 'global.onnx'))) as never);
    assert.ok(maxDifference(final, start) > 1e-3);
  });
});
