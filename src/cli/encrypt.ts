import { open } from 'node:fs/promises';
import { KilnError } from '../errors.js';
import { encryptModelFile } from '../model/encrypt-model-file.js';
import { MODEL_KEY_ENV } from '../model/encryption.js';
import { modelKeyFrom, newModelKeyText } from '../model/model-keys.js';
import { formatBytes } from '../text/format.js';
import { stringOption } from './args.js';
import type { Command } from './command.js';

/** Writes a new random key to `file`, which must not exist yet (overwriting a key would orphan the models encrypted with it). */
async function writeNewKey(file: string): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new KilnError('INVALID_ARGUMENT', `kiln encrypt --new-key: '${file}' exists; refusing to replace a key (the models encrypted with it could no longer be read)`);
    throw new KilnError('IO_ERROR', `kiln encrypt --new-key: cannot create '${file}' (${code ?? (err as Error).message})`);
  }
  try {
    await handle.writeFile(newModelKeyText());
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export const encryptCommand: Command = {
  name: 'encrypt',
  summary: 'Encrypt a model at rest (AES-256-GCM) for kiln serve --key-file / loadModel(file, { key })',
  usage: `kiln encrypt model.onnx --key-file KEY [--new-key] [--out model.onnx.enc]   (or the key in $${MODEL_KEY_ENV})`,
  options: [
    { name: 'key-file', type: 'string', description: `the 32-byte key: raw, 64 hex digits or base64 (default: $${MODEL_KEY_ENV}; never on the command line)` },
    { name: 'new-key', type: 'boolean', description: 'first write a new random key to --key-file (which must not exist), readable by its owner only' },
    { name: 'out', type: 'string', description: 'the encrypted model (default: <model>.enc), written atomically' },
  ],
  async run({ positionals, options }, out) {
    if (positionals.length !== 1) throw new KilnError('INVALID_ARGUMENT', `kiln encrypt: give one model file, got ${positionals.length}`);
    const input = positionals[0]!;
    const keyFile = stringOption(options, 'key-file');
    if (options['new-key']) {
      if (keyFile === undefined) throw new KilnError('INVALID_ARGUMENT', 'kiln encrypt --new-key: give --key-file FILE to write the new key to');
      await writeNewKey(keyFile);
      out(`wrote a new key to ${keyFile} (keep it apart from the models; whoever holds it can read them)`);
    }
    const key = await modelKeyFrom(keyFile);
    if (!key) throw new KilnError('INVALID_ARGUMENT', `kiln encrypt: give the key with --key-file FILE or the ${MODEL_KEY_ENV} environment variable (a new one: --key-file FILE --new-key)`);
    const output = stringOption(options, 'out') ?? `${input}.enc`;
    const { bytes, encryptedBytes } = await encryptModelFile(input, output, key);
    out(`encrypted ${input} (${formatBytes(bytes)}) to ${output} (${formatBytes(encryptedBytes)}, AES-256-GCM)`);
    return 0;
  },
};
