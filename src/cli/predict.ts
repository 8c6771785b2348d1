import { readFile } from 'node:fs/promises';
import { npy } from '../data/npy.js';
import { KilnError } from '../errors.js';
import { readImageHeader } from '../images/header.js';
import { client, tensorToRequest } from '../serve/client.js';
import { nestedShape } from '../serve/datatypes.js';
import { parseJson, stringifyJson } from '../serve/json.js';
import { defaultedString, numberOption, stringOption } from './args.js';
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

/**
 * An image file as a KServe v2 request: one BYTES element (base64), which the server decodes and
 * preprocesses for the model's input (kiln.images.toTensor); with `topk`, Triton's classification
 * parameter on the first output. The header is checked here first, so a GIF or a truncated file is
 * named before anything is sent.
 */
async function imageRequest(file: string, model: string, cli: ReturnType<typeof client>, version: string | undefined, topk: number | undefined): Promise<Record<string, unknown>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new KilnError('FILE_NOT_FOUND', `kiln predict: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  readImageHeader(bytes, { maxPixels: Number.MAX_SAFE_INTEGER }, file);
  const meta = await cli.modelMetadata(model, { version });
  if (meta.inputs.length !== 1) throw new KilnError('INVALID_ARGUMENT', `kiln predict: model '${model}' has ${meta.inputs.length} inputs; --image feeds a model with one`);
  return {
    inputs: [{ name: meta.inputs[0]!.name, shape: [1], datatype: 'BYTES', data: [bytes.toString('base64')] }],
    ...(topk !== undefined ? { outputs: [{ name: meta.outputs[0]!.name, parameters: { classification: topk } }] } : {}),
  };
}

export const predictCommand: Command = {
  name: 'predict',
  summary: 'Send an inference request to a KServe v2 server (kiln serve, Triton, KServe) and print the outputs as JSON',
  usage: 'kiln predict --url http://127.0.0.1:8501 --model NAME (--input input.json|input.npy | --image cat.jpg [--topk 3]) [--model-version N] [--output NAME]',
  options: [
    { name: 'url', type: 'string', description: 'server URL', default: 'http://127.0.0.1:8501' },
    { name: 'model', type: 'string', description: 'model name' },
    { name: 'model-version', type: 'string', description: 'model version (default: the latest the server has ready)' },
    { name: 'input', type: 'string', description: '.npy tensor, or JSON: a v2 request body, a nested array, or {"input name": nested array}' },
    { name: 'image', type: 'string', description: "a JPEG or PNG file, decoded, resized and normalized by the server for the model's input" },
    { name: 'topk', type: 'number', integer: true, min: 1, description: 'with --image: the k best classes as "score:index:label" (KServe v2 classification)' },
    { name: 'output', type: 'string', description: 'comma-separated outputs to return (default: all)' },
    { name: 'auth-token', type: 'string', description: 'bearer token (or env KILN_AUTH_TOKEN)' },
  ],
  async run({ options }, out) {
    const model = stringOption(options, 'model');
    const input = stringOption(options, 'input');
    const image = stringOption(options, 'image');
    const topk = numberOption(options, 'topk');
    if (!model || (input === undefined) === (image === undefined)) throw new KilnError('INVALID_ARGUMENT', 'kiln predict: give --model NAME and one of --input FILE or --image FILE');
    if (topk !== undefined && image === undefined) throw new KilnError('INVALID_ARGUMENT', 'kiln predict: --topk goes with --image');
    if (topk !== undefined && options.output) throw new KilnError('INVALID_ARGUMENT', 'kiln predict: --topk answers the first output; leave out --output');
    const version = stringOption(options, 'model-version');
    const cli = client(defaultedString(options, 'url'), { token: stringOption(options, 'auth-token') ?? (process.env.KILN_AUTH_TOKEN || undefined) });
    const body = (image !== undefined ? await imageRequest(image, model, cli, version, topk) : await requestBody(input!, model, cli, version)) as Record<string, unknown>;
    if (options.output) body.outputs = String(options.output).split(',').map((name) => ({ name: name.trim() }));
    out(stringifyJson(await cli.inferRaw(model, body, { version })));
    return 0;
  },
};
