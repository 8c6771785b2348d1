// Owns writing a training package to a folder (Node): every file written atomically, the manifest
// last, so a folder whose writing stopped halfway has no manifest and is refused as incomplete.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../errors.js';
import { writeFileAtomic } from '../platform/atomic-write.js';
import type { TrainableModel } from './model.js';
import { MANIFEST_FILE, TRAINER_FILES, trainingPackage, type TrainerFileRole, type TrainerManifest } from './training-package.js';

/** Writes the compiled model's training package into `outDir` (created if needed); returns its manifest. */
export async function exportTrainer(model: TrainableModel, outDir: string): Promise<TrainerManifest> {
  const pkg = await trainingPackage(model);
  try {
    await mkdir(outDir, { recursive: true });
  } catch (err) {
    throw new KilnError('IO_ERROR', `could not create '${outDir}': ${(err as Error).message}`, { cause: err });
  }
  for (const role of Object.keys(TRAINER_FILES) as TrainerFileRole[]) await writeFileAtomic(path.join(outDir, TRAINER_FILES[role]), pkg.files[role]);
  await writeFileAtomic(path.join(outDir, MANIFEST_FILE), JSON.stringify(pkg.manifest, null, 1) + '\n');
  return pkg.manifest;
}
