import { KilnError } from '../errors.js';
import { ImageError, looksLikeImage } from '../images/header.js';
import { decodeImage } from '../images/decode.js';
import { imageInputSpec, pixelsToTensor } from '../images/to-tensor.js';
import { Tensor } from '../tensor.js';
import type { ElementBudget } from './datatypes.js';
import { badRequest, ServeError } from './errors.js';
import type { InferenceLimits } from './inference.js';
import type { ModelVersion } from './model-version.js';
import type { TensorSpec } from './signature.js';

/*
 * Images in requests, whichever way a protocol carries them — a raw `image/jpeg` or `image/png` body
 * (or any body whose first bytes are an image file's: curl's --data-binary labels everything form
 * data), a multipart form's `data` / `body` file (TorchServe's `curl -F data=@cat.jpg`), base64 in
 * JSON (TF Serving's {"b64": ...}, KServe v2 BYTES elements, TorchServe's {"data": "..."}) — become
 * the tensor the model's image input takes, by the library's preprocessing (images/to-tensor.ts) with
 * the model's declared layout and mean/std and its config's crop and size. A bad image is a 4xx that
 * names it: 415 for a format Kiln does not decode, 400 for the rest.
 */

/** A request body that is image files, as the body parser hands it to the routes. */
export class ImageBody {
  constructor(readonly images: Buffer[]) {}
}

/** Multipart form fields that carry the input, as TorchServe's handlers read them. */
const FORM_FIELDS = new Set(['data', 'body']);

/**
 * A request body as images when it is some — an image content type or an image file's first bytes, or
 * a multipart form whose `data` / `body` parts are images — else the bytes to read as JSON (or as JSON
 * and binary tensors): the body itself, or a form's `data` / `body` part.
 */
export function imagesOrJson(body: Buffer, contentType: string | undefined): ImageBody | Buffer {
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  if (type === 'multipart/form-data') {
    const parts = multipartParts(body, contentType!).filter((p) => FORM_FIELDS.has(p.name));
    if (parts.length === 0) throw badRequest('the multipart form has no "data" (or "body") part; send the image as -F data=@image.jpg');
    if (parts.every((p) => looksLikeImage(p.content) || p.contentType.startsWith('image/'))) return new ImageBody(parts.map((p) => p.content));
    if (parts.length > 1) throw badRequest('the multipart form has several "data" parts that are not all images; send one JSON part');
    return parts[0]!.content;
  }
  if (type.startsWith('image/') || looksLikeImage(body)) return new ImageBody([body]);
  return body;
}

interface FormPart {
  name: string;
  contentType: string;
  content: Buffer;
}

/** The parts of a multipart/form-data body (RFC 7578): each one's field name, content type and bytes. */
function multipartParts(body: Buffer, contentType: string): FormPart[] {
  const boundary = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!boundary) throw badRequest('a multipart/form-data body needs a boundary in its Content-Type');
  const delimiter = Buffer.from(`--${boundary[1] ?? boundary[2]}`, 'latin1');
  const parts: FormPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw badRequest('the multipart body does not contain its boundary');
  for (;;) {
    at += delimiter.length;
    if (body[at] === 0x2d && body[at + 1] === 0x2d) break; // the closing delimiter
    const headersEnd = body.indexOf('\r\n\r\n', at, 'latin1');
    if (headersEnd < 0) throw badRequest('a multipart part has no end to its headers');
    const headers = body.toString('latin1', at, headersEnd);
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n', 'latin1'), delimiter]), headersEnd + 4);
    if (next < 0) throw badRequest('the multipart body ends before its closing boundary');
    const name = /content-disposition:[^\r\n]*\bname="([^"]*)"/i.exec(headers)?.[1] ?? '';
    const type = /content-type:\s*([^\r\n;]*)/i.exec(headers)?.[1]?.trim().toLowerCase() ?? '';
    parts.push({ name, contentType: type, content: body.subarray(headersEnd + 4, next) });
    at = next + 2;
  }
  return parts;
}

const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** Base64 text (standard or URL-safe, whitespace allowed) → bytes; anything else is a 400 naming `what`. */
export function fromBase64(text: unknown, what: string): Buffer {
  if (Buffer.isBuffer(text)) return text;
  if (typeof text !== 'string') throw badRequest(`${what} must be a base64 string, found ${text === null ? 'null' : typeof text}`);
  const compact = text.replace(/\s+/g, '');
  if (!BASE64.test(compact)) throw badRequest(`${what} is not base64 text`);
  return Buffer.from(compact, compact.includes('-') || compact.includes('_') ? 'base64url' : 'base64');
}

/** TF Serving's binary value: an object whose only key is "b64". */
export function isB64(v: unknown): v is { b64: unknown } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && 'b64' in v && Object.keys(v).length === 1;
}

/** One ImageError (or other KilnError from the preprocessing) as the HTTP answer it deserves. */
function asServeError(err: unknown, what: string): never {
  if (err instanceof ServeError) throw err;
  if (err instanceof ImageError) throw new ServeError(err.problem === 'unsupported' ? 415 : 400, err.message, { cause: err });
  if (err instanceof KilnError && err.code !== 'RUNTIME_ERROR' && err.code !== 'IO_ERROR') throw badRequest(`${what}: ${err.message}`);
  throw err;
}

/**
 * Image files → the tensor [N, ...] for one of the version's inputs, each image preprocessed as
 * kiln.images.toTensor does (decoded on libuv's pool, at most maxImagePixels each), counted against
 * the request's element budget before it is decoded.
 */
export async function imagesToTensor(version: ModelVersion, spec: TensorSpec, images: readonly Uint8Array[], limits: InferenceLimits, budget: ElementBudget): Promise<Tensor> {
  const what = `input '${spec.name}'`;
  if (images.length === 0) throw badRequest(`${what}: no images given`);
  const config = version.config.image ?? {};
  let input;
  try {
    input = imageInputSpec(version.description!, { inputName: spec.onnxName });
  } catch (err) {
    asServeError(err, `${version.what} cannot take images`);
  }
  const height = config.size?.[0] ?? input.height;
  const width = config.size?.[1] ?? input.width;
  if (height === undefined || width === undefined) throw badRequest(`${version.what}: ${what} leaves its height or width variable; set "image": {"size": [height, width]} in the model's config.json`);
  const perImage = height * width * input.channels;
  budget.take(perImage * images.length, what, [images.length, ...(input.layout === 'nchw' ? [input.channels, height, width] : input.layout === 'nhwc' ? [height, width, input.channels] : [height, width])]);
  const tensors = await Promise.all(
    images.map(async (bytes, i) => {
      const shown = images.length > 1 ? `image ${i} of ${what}` : `the image for ${what}`;
      try {
        const decoded = await decodeImage(bytes, { maxPixels: limits.maxImagePixels }, shown);
        return pixelsToTensor(decoded, input, { crop: config.crop, size: [height, width] });
      } catch (err) {
        return asServeError(err, shown);
      }
    }),
  );
  return stack(tensors);
}

/** [1, ...] tensors → one [N, ...] tensor. */
function stack(tensors: Tensor[]): Tensor {
  if (tensors.length === 1) return tensors[0]!;
  const first = tensors[0]!;
  const rowSize = first.size;
  const data = first.dtype === 'uint8' ? new Uint8Array(rowSize * tensors.length) : new Float32Array(rowSize * tensors.length);
  tensors.forEach((t, i) => data.set(t.data as Float32Array & Uint8Array, i * rowSize));
  return new Tensor(data as never, [tensors.length, ...first.shape.slice(1)], first.dtype);
}
