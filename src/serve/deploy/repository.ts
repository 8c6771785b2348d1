import { pino } from 'pino';
import { KilnError } from '../../errors.js';
import { isEncryptedModel } from '../../model/encryption.js';
import { describeModel } from '../../model/onnx-model.js';
import { parseOnnx } from '../../model/read-model.js';
import { DEFAULT_MODEL_CONFIG, type ModelConfig } from '../config.js';
import { RepositorySource } from '../model-sources.js';
import { signatureOf, type Signature } from '../signature.js';

/*
 * A model repository as the deploy targets see it: each model's Kiln config, and each version's bytes
 * and signature — read the way `kiln serve` reads them (model-sources.ts: config.json over defaults,
 * nothing through a link out of the repository), so what is deployed is what Kiln serves. A config
 * error, an unreadable version or versions of one model with different signatures are refused here,
 * by name, before anything is written.
 */

export interface RepositoryVersion {
  version: number;
  /** Path inside the repository, e.g. "cnn/1/model.onnx". */
  shownAs: string;
  /** The file name in the version folder: model.onnx or model.onnx.enc. */
  fileName: string;
  bytes: Uint8Array;
  encrypted: boolean;
  /** Undefined for encrypted versions (their contents cannot be read without the key). */
  signature: Signature | undefined;
}

export interface RepositoryModel {
  name: string;
  config: ModelConfig;
  /** Versions on disk, oldest first. */
  versions: RepositoryVersion[];
}

export async function readRepository(dir: string): Promise<RepositoryModel[]> {
  const source = new RepositorySource(dir, DEFAULT_MODEL_CONFIG, pino({ level: 'silent' }));
  const scanned = await source.scan();
  const models: RepositoryModel[] = [];
  for (const s of scanned.sort((a, b) => a.name.localeCompare(b.name))) {
    if (s.configError !== undefined) throw new KilnError('INVALID_ARGUMENT', `model repository '${dir}': ${s.configError}`);
    const versions: RepositoryVersion[] = [];
    for (const [number, v] of [...s.versions].sort((a, b) => a[0] - b[0])) {
      const shownAs = v.shownAs!;
      if (v.error) throw new KilnError('INVALID_ARGUMENT', `model repository '${dir}': ${v.error}`);
      const bytes = await v.read!();
      const encrypted = isEncryptedModel(bytes);
      const signature = encrypted ? undefined : signatureOf(describeModel(parseOnnx(bytes, shownAs), bytes.length), s.config!);
      versions.push({ version: number, shownAs, fileName: shownAs.slice(shownAs.lastIndexOf('/') + 1), bytes, encrypted, signature });
    }
    if (versions.length === 0) throw new KilnError('INVALID_ARGUMENT', `model repository '${dir}': model '${s.name}' has no version folder holding a model.onnx (expected ${s.name}/<version>/model.onnx)`);
    const described = versions.filter((v) => v.signature);
    for (const v of described.slice(1)) {
      const [a, b] = [JSON.stringify(described[0]!.signature), JSON.stringify(v.signature)];
      if (a !== b) throw new KilnError('INVALID_ARGUMENT', `model '${s.name}': versions ${described[0]!.version} and ${v.version} have different inputs or outputs; one deployment config cannot describe both (serve them as two models)`);
    }
    models.push({ name: s.name, config: s.config!, versions });
  }
  if (models.length === 0) throw new KilnError('INVALID_ARGUMENT', `model repository '${dir}' holds no models (expected <model>/<version>/model.onnx)`);
  return models;
}
