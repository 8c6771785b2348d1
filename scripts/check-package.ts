/**
 * CI's check that Kiln installs as a dependency: `npm pack`, install the tarball into an empty
 * project as a user would (npm's defaults, only the npm registry reachable), then `npx kiln --help`
 * and a one-epoch `fit` that imports 'kiln' by name, with no onnxruntime-web installed (an optional peer
 * dependency: a Node-only user does not get its 139 MB, and `kiln browser-demo` says what to install);
 * then, after `npm install onnxruntime-web` as the browser guide says, a short `kiln browser-demo
 * --headless` (the browser bundle as the package ships it, in Chromium).
 *
 *   node dist/scripts/check-package.js [--keep]
 *
 * The test suite cannot see this: it imports src/ from the repository, where every file exists and
 * the dev dependencies are installed. Only a packed install shows a file missing from `files`, an
 * import of a dev dependency, or an install script that needs the internet. The empty project denies
 * onnxruntime-node's CUDA download the way README tells users to (`allowScripts`, or the
 * environment variable where npm predates allowScripts), so the check fails if that advice stops
 * working. It also fails on npm's "Unknown config" warnings, the kind Kiln's own configuration
 * once caused. `--keep` leaves the project in the temporary folder to look at.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** allowScripts arrived in npm 11.16; older npm ignores the field and runs the script. */
function npmHasAllowScripts(): boolean {
  const [major, minor] = execFileSync(NPM, ['--version'], { encoding: 'utf8' }).trim().split('.').map(Number);
  return major! > 11 || (major === 11 && minor! >= 16);
}

/** Runs a command in `cwd`, echoing its output; throws with the output when it fails. */
function run(what: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): string {
  console.log(`\n$ ${[command, ...args].join(' ')}`);
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 10 * 60_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  process.stdout.write(output);
  if (r.error || r.status !== 0) throw new Error(`check-package: ${what} failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`})`);
  return output;
}

/** Runs a command that must fail; returns its output. */
function runFailing(what: string, command: string, args: string[], cwd: string): string {
  console.log(`\n$ ${[command, ...args].join(' ')}   # must fail`);
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 10 * 60_000 });
  const output = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  process.stdout.write(output);
  if (r.error || r.status === 0) throw new Error(`check-package: ${what} should have failed (${r.error?.message ?? 'exit 0'})`);
  return output;
}

/** The user's program: the embedded data set, a small CNN, one epoch, evaluate, save, load, predict. */
const FIT_SCRIPT = `import * as kiln from 'kiln';

const { train, test } = await kiln.datasets.embedded();
const x = train.images.slice(0, 256);
const y = train.labels.slice(0, 256);
const model = kiln.sequential({ seed: 1 });
model.add(kiln.layers.conv2d({ filters: 4, kernelSize: 3, activation: 'relu', inputShape: [28, 28, 1] }));
model.add(kiln.layers.maxPooling2d({ poolSize: 2 }));
model.add(kiln.layers.flatten());
model.add(kiln.layers.dense({ units: 10 }));
model.compile({ optimizer: 'adam', loss: kiln.losses.sparseCategoricalCrossentropy({ fromLogits: true }), metrics: ['accuracy'] });
const history = await model.fit(x, y, { epochs: 1, batchSize: 32, verbose: 0 });
const loss = history.history.loss[0];
if (!Number.isFinite(loss)) throw new Error('fit gave loss ' + loss);
const evaluation = await model.evaluate(test.images.slice(0, 200), test.labels.slice(0, 200));
await model.save('model.onnx');
const again = await kiln.loadModel('model.onnx');
const logits = await again.predict(test.images.slice(0, 2));
console.log('fit: 1 epoch on 256 images, loss ' + loss.toFixed(4) + ', test accuracy ' + evaluation.accuracy.toFixed(3) + '; saved, loaded, predicted ' + JSON.stringify(logits.shape));
`;

function main(): void {
  const keep = process.argv.includes('--keep');
  const unknown = process.argv.slice(2).filter((a) => a !== '--keep');
  if (unknown.length > 0) throw new Error(`check-package: unknown argument ${unknown.join(' ')} (only --keep)`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-package-'));
  try {
    run('npm pack', NPM, ['pack', '--pack-destination', dir], ROOT);
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`check-package: npm pack wrote no tarball into ${dir}`);

    const project = path.join(dir, 'project');
    const allowScripts = npmHasAllowScripts();
    const manifest = { name: 'kiln-package-check', private: true, type: 'module', ...(allowScripts ? { allowScripts: { 'onnxruntime-node': false } } : {}) };
    mkdirSync(project);
    writeFileSync(path.join(project, 'package.json'), JSON.stringify(manifest, null, 2) + '\n');
    writeFileSync(path.join(project, 'fit.mjs'), FIT_SCRIPT);
    const env = allowScripts ? process.env : { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' };
    console.log(allowScripts ? 'npm has allowScripts: the project denies onnxruntime-node\'s script' : 'npm predates allowScripts: ONNXRUNTIME_NODE_INSTALL=skip');
    const install = run('npm install', NPM, ['install', '--no-audit', '--no-fund', path.join(dir, tarball)], project, env);

    const unknownConfig = install.split('\n').filter((l) => /Unknown \w+ config/.test(l));
    if (unknownConfig.length > 0) throw new Error(`check-package: npm warned about configuration:\n${unknownConfig.join('\n')}`);
    const cuda = path.join(project, 'node_modules/onnxruntime-node/bin/napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
    if (existsSync(cuda)) throw new Error(`check-package: the install fetched ${cuda}`);

    const help = run('npx kiln --help', NPM, ['exec', '--no', '--', 'kiln', '--help'], project);
    if (!help.includes('Usage: kiln')) throw new Error('check-package: `kiln --help` printed no usage');
    const fit = run('fit', process.execPath, ['fit.mjs'], project);
    if (!/^fit: 1 epoch/m.test(fit)) throw new Error('check-package: the fit script printed no result');
    // onnxruntime-web is an optional peer: not installed with Kiln, and the browser demo names it.
    if (existsSync(path.join(project, 'node_modules/onnxruntime-web'))) throw new Error('check-package: npm install kiln installed onnxruntime-web, an optional peer dependency');
    const demoArgs = ['exec', '--no', '--', 'kiln', 'browser-demo', '--headless', '--epochs', '1', '--limit', '64', '--out', 'browser.onnx'];
    const missing = runFailing('kiln browser-demo without onnxruntime-web', NPM, demoArgs, project);
    if (!/needs onnxruntime-web, an optional peer dependency of Kiln that is not installed: npm install onnxruntime-web@/.test(missing)) throw new Error('check-package: kiln browser-demo without onnxruntime-web did not say to install it');
    const range = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { peerDependencies: Record<string, string> }).peerDependencies['onnxruntime-web']!;
    run('npm install onnxruntime-web', NPM, ['install', '--no-audit', '--no-fund', `onnxruntime-web@${range}`], project, env);
    // The browser bundle as the package ships it and onnxruntime-web's files, in Chromium (CI installs it).
    const demo = run('kiln browser-demo --headless', NPM, demoArgs, project);
    if (!/^Browser: test accuracy/m.test(demo) || !existsSync(path.join(project, 'browser.onnx'))) throw new Error('check-package: kiln browser-demo --headless printed no result or saved no model');
    console.log(`\ncheck-package: ${tarball} installs into an empty project without onnxruntime-web; kiln --help and a one-epoch fit work, browser-demo names the missing peer; with onnxruntime-web installed a headless browser-demo works`);
  } finally {
    if (keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

main();
