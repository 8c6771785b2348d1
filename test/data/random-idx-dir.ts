/**
 * A directory holding a random data set in MNIST's IDX format (`train-*` and `t10k-*` gzipped image and
 * label files), for CLI tests that take `--dataset DIR`: pixels and labels drawn from one seeded stream.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeIdx } from '../../src/data/idx.js';
import { Random } from '../../src/random.js';

/** Writes `train` and `test` random side×side images with labels in [0, 10) into dir. */
export async function writeRandomIdxDir(dir: string, options: { seed: number; train: number; test: number; side?: number }): Promise<void> {
  const rng = new Random(options.seed);
  const side = options.side ?? 28;
  for (const [stem, n] of [['train', options.train], ['t10k', options.test]] as const) {
    const pixels = Uint8Array.from({ length: n * side * side }, () => rng.int(256));
    const labels = Uint8Array.from({ length: n }, () => rng.int(10));
    await writeFile(join(dir, `${stem}-images-idx3-ubyte.gz`), gzipSync(encodeIdx([n, side, side], pixels)));
    await writeFile(join(dir, `${stem}-labels-idx1-ubyte.gz`), gzipSync(encodeIdx([n], labels)));
  }
}
