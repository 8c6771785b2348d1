/**
 * Builds data/fashion-mnist-subset/: a seeded, class-balanced subset of Fashion-MNIST taken from
 * Debian's dataset-fashion-mnist package, written as gzipped IDX so the ordinary loader reads it.
 *
 *   npx tsc -p tsconfig.json && node dist/scripts/make-embedded-dataset.js [--source DIR] [--out DIR] [--seed N]
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, encodeIdx, parseIdx } from '../src/data/idx.js';
import { DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST_CLASS_NAMES } from '../src/data/mnist.js';
import { Random } from '../src/random.js';

const TRAIN_PER_CLASS = 1000;
const TEST_PER_CLASS = 200;

const LICENSE = `The images and labels in this folder are a subset of Fashion-MNIST
(https://github.com/zalandoresearch/fashion-mnist), distributed under the MIT License:

The MIT License (MIT) Copyright © 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and
associated documentation files (the "Software"), to deal in the Software without restriction,
including without limitation the rights to use, copy, modify, merge, publish, distribute,
sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;

function packageRoot(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
  }
  throw new Error('make-embedded-dataset: no package.json above this script');
}

async function readIdx(path: string, magic: number): Promise<{ dims: number[]; data: Uint8Array }> {
  return parseIdx(gunzipSync(await readFile(path)), path, magic);
}

/**
 * Picks `perClass` examples of every class at random (seeded), kept in their original order so
 * the subset mixes classes the way the source does.
 */
function balancedSubset(labels: Uint8Array, perClass: number, random: Random): Int32Array {
  const chosen: number[] = [];
  for (let label = 0; label < FASHION_MNIST_CLASS_NAMES.length; label++) {
    const members: number[] = [];
    for (let i = 0; i < labels.length; i++) if (labels[i] === label) members.push(i);
    if (members.length < perClass) {
      throw new Error(`class ${label} has only ${members.length} examples, ${perClass} wanted`);
    }
    const order = random.permutation(members.length);
    for (let k = 0; k < perClass; k++) chosen.push(members[order[k]!]!);
  }
  return Int32Array.from(chosen.sort((a, b) => a - b));
}

async function writeSubset(
  sourceDir: string,
  outDir: string,
  stem: 'train' | 't10k',
  perClass: number,
  random: Random,
): Promise<number> {
  const images = await readIdx(join(sourceDir, `${stem}-images-idx3-ubyte.gz`), IDX_IMAGES_MAGIC);
  const labels = await readIdx(join(sourceDir, `${stem}-labels-idx1-ubyte.gz`), IDX_LABELS_MAGIC);
  const [, rows, columns] = images.dims as [number, number, number];
  const picked = balancedSubset(labels.data, perClass, random);
  const imageLength = rows * columns;
  const pickedImages = new Uint8Array(picked.length * imageLength);
  const pickedLabels = new Uint8Array(picked.length);
  picked.forEach((source, i) => {
    pickedImages.set(images.data.subarray(source * imageLength, (source + 1) * imageLength), i * imageLength);
    pickedLabels[i] = labels.data[source]!;
  });
  // Level 9 because these bytes ship in every install of the package.
  const gzip = (bytes: Uint8Array): Buffer => gzipSync(bytes, { level: 9 });
  await writeFile(join(outDir, `${stem}-images-idx3-ubyte.gz`), gzip(encodeIdx([picked.length, rows, columns], pickedImages)));
  await writeFile(join(outDir, `${stem}-labels-idx1-ubyte.gz`), gzip(encodeIdx([picked.length], pickedLabels)));
  return picked.length;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      source: { type: 'string', default: DEBIAN_FASHION_MNIST_DIR },
      out: { type: 'string', default: join(packageRoot(), 'data', 'fashion-mnist-subset') },
      seed: { type: 'string', default: '42' },
    },
  });
  const seed = Number(values.seed);
  const random = new Random(seed);
  await mkdir(values.out, { recursive: true });
  const trainCount = await writeSubset(values.source, values.out, 'train', TRAIN_PER_CLASS, random);
  const testCount = await writeSubset(values.source, values.out, 't10k', TEST_PER_CLASS, random);
  await writeFile(join(values.out, 'LICENSE'), LICENSE);
  await writeFile(
    join(values.out, 'README.md'),
    `# Fashion-MNIST subset\n\n` +
      `${trainCount} training images (${TRAIN_PER_CLASS} per class) and ${testCount} test images ` +
      `(${TEST_PER_CLASS} per class) drawn at random with seed ${seed} from Fashion-MNIST as packaged by Debian ` +
      `(dataset-fashion-mnist, ${DEBIAN_FASHION_MNIST_DIR}), kept in source order, written as gzipped IDX ` +
      `by \`node dist/scripts/make-embedded-dataset.js\` (source: scripts/make-embedded-dataset.ts). ` +
      `Load it with \`datasets.embedded()\`. Licence: see LICENSE (MIT, Copyright (c) 2017 Zalando SE).\n`,
  );
  console.log(`wrote ${trainCount} training and ${testCount} test images to ${values.out}`);
}

await main();
