import { readFile } from 'node:fs/promises';
import { npy } from '../data/npy.js';
import { KilnError } from '../errors.js';
import { client, tensorToRequest } from '../serve/client.js';
import { nestedShape } from '../serve/datatypes.js';
import { parseJson, stringifyJson } from '../serve/json.js';
import { defaultedString, stringOption } from './args.js';
import type { Command } from './command.js';

/** A JSON input file: a KServe v2 request body as is, a nested array (single input), or {input: nested array}. */
async function requestBody(file: string, model: string, cli: ReturnType<typeof client>, version: string | undefined): Promise<unknown> {
  if (file.toLowerCase().endsWith('.npy')) {
    const meta = await cli.modelMetadata(model, { version });
    if (meta.inputs.length !== 1) throw new KilnError('INVALID_ARGUMENT', `kiln predict: an .npy file feeds one input; model '${model}' has ${meta.inputs.length}: use a JSON file`);
    return { inputs: [tensorToRequest(meta.inputs[0]!.name, await npy(file))] };
  }
  let value: unknown;
  try {
    value = parseJson(await readFile(file, 'utf8'));
  } catch (err) {
    throw new KilnError('INVALID_DATA', `kiln predict: ${file}: ${(err as Error).message}`);
  }
  if (typeof value === 'object' && value !== null && Array.isArray((value as { inputs?: unknown }).inputs)) return value;
  const meta = await cli.modelMetadata(model, { version });
  const named: Record<string, unknown> = Array.isArray(value) ? { [meta.inputs[0]?.name ?? 'input']: value } : (value as Record<string, unknown>);
  if (Array.isArray(value) && meta.inputs.length !== 1) throw new KilnError('INVALID_ARGUMENT', `kiln predict: model '${model}' has ${meta.inputs.length} inputs; give {"name": values, ...}`);
  return {
    inputs: Object.entries(named).map(([name, data]) => {
      const input = meta.inputs.find((i) => i.name === name);
      if (!input) throw new KilnError('INVALID_ARGUMENT', `kiln predict: model '${model}' has no input '${name}' (inputs: ${meta.inputs.map((i) => i.name).join(', ')})`);
      return { name, shape: nestedShape(data, `input '${name}'`), datatype: input.datatype, data };
    }),
  };
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'Send an inference request to a KServe v2 server (kiln serve, Triton, KServe) and print the outputs as JSON',
  usage: 'kiln predict --url http://127.0.0.1:8501 --model NAME --input input.json|input.npy [--model-version N] [--output NAME]',
  options: [
    { name: 'url', type: 'string', description: 'server URL', default: 'http://127.0.0.1:8501' },
    { name: 'model', type: 'string', description: 'model name' },
    { name: 'model-version', type: 'string', description: 'model version (default: the latest the server has ready)' },
    { name: 'input', type: 'string', description: '.npy tensor, or JSON: a v2 request body, a nested array, or {"input name": nested array}' },
    { name: 'output', type: 'string', description: 'comma-separated outputs to return (default: all)' },
    { name: 'auth-token', type: 'string', description: 'bearer token (or env KILN_AUTH_TOKEN)' },
  ],
  async run({ options }, out) {
    const model = stringOption(options, 'model');
    const input = stringOption(options, 'input');
    if (!model || !input) throw new KilnError('INVALID_ARGUMENT', 'kiln predict: give --model NAME and --input FILE');
    const version = stringOption(options, 'model-version');
    const cli = client(defaultedString(options, 'url'), { token: stringOption(options, 'auth-token') ?? (process.env.KILN_AUTH_TOKEN || undefined) });
    const body = (await requestBody(input, model, cli, version)) as Record<string, unknown>;
    if (options.output) body.outputs = String(options.output).split(',').map((name) => ({ name: name.trim() }));
    out(stringifyJson(await cli.inferRaw(model, body, { version })));
    return 0;
  },
};
