import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/random.js';
import { decodeElements } from '../../src/serve/datatypes.js';
import { ServeError } from '../../src/serve/errors.js';
import { parseJson } from '../../src/serve/json.js';
import { NumberList, parseInferJson, readNumberList } from '../../src/serve/number-lists.js';
import { Tensor } from '../../src/tensor.js';
import { http, smallCnn, startServer } from './helpers.js';

/*
 * The KServe v2 body fast path must give exactly what JSON.parse (then Math.fround for FP32) gives,
 * for every way clients print numbers, and leave everything it does not handle to JSON.parse.
 */

function body(texts: readonly string[], space = ''): Buffer {
  const list = `[${space}${texts.join(`${space},${space}`)}${space}]`;
  return Buffer.from(`{"inputs":[{"name":"input","shape":[${texts.length}],"datatype":"FP32","data"${space}:${space}${list}}]}`);
}

function dataOf(parsed: unknown): unknown {
  return (parsed as { inputs: { data: unknown }[] }).inputs[0]!.data;
}

/** Checks the fast path against JSON.parse on one list of number texts. */
function assertSameAsJsonParse(texts: readonly string[], space = ''): NumberList {
  const bytes = body(texts, space);
  const list = dataOf(parseInferJson(bytes));
  assert.ok(list instanceof NumberList, `a NumberList for ${texts.slice(0, 3).join(',')}...`);
  const expected = dataOf(JSON.parse(bytes.toString())) as number[];
  const numbers = list.toNumbers();
  assert.equal(numbers.length, expected.length);
  for (let i = 0; i < expected.length; i++) assert.ok(Object.is(numbers[i], expected[i]), `${texts[i]}: ${numbers[i]} vs JSON.parse ${expected[i]}`);
  const float32 = list.toFloat32(new Float32Array(texts.length));
  for (let i = 0; i < expected.length; i++) assert.ok(Object.is(float32[i], Math.fround(expected[i]!)), `${texts[i]} as float32: ${float32[i]} vs ${Math.fround(expected[i]!)}`);
  return list;
}

test('flat number lists read exactly as JSON.parse reads them, in every notation clients print', () => {
  const rng = new Random(7);
  const texts: string[] = [];
  for (let i = 0; i < 4000; i++) {
    const x = (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 16 - 8);
    const f = Math.fround(x);
    texts.push(
      String(x), // shortest double (17 digits typically): what JavaScript and Python print
      String(f), // a float32 widened to double (what numpy's tolist() gives)
      x.toExponential(Math.floor(rng.next() * 20)),
      x.toExponential(3).toUpperCase().replace('E', 'E'),
      x.toFixed(Math.floor(rng.next() * 20)),
      String(Math.round(x * 1000)),
    );
  }
  texts.push('0', '-0', '0.0', '-0.0', '1e0', '1E+2', '1e-2', '5e-324', '2.2250738585072014e-308', '1.7976931348623157e308', '1e400', '-1e400', '1e-400');
  texts.push('123456789012345678901234567890', '0.000000000000000000000000001', '9007199254740993', '1.00000000000000000000000000000001');
  texts.push('3.4028235677973366e38', '3.4028235677973367e38', '1.401298464324817e-45', '7.006492321624085e-46');
  assertSameAsJsonParse(texts);
  assertSameAsJsonParse(texts.slice(0, 50), ' \n\t\r ');
});

test('values at the rounding midpoint between two float32s read exactly, although the fast approximation alone would misround some', () => {
  const rng = new Random(11);
  const texts: string[] = [];
  for (let i = 0; i < 2000; i++) {
    const f = Math.fround((rng.next() + 0.01) * 10 ** Math.floor(rng.next() * 10 - 5));
    // The next float32 up: scale by 1 + 2^-23 and round; the midpoint of the two is a double.
    const next = Math.fround(f * (1 + 2 ** -23));
    const mid = (f + next) / 2;
    // The midpoint itself, and decimal texts a hair either side of it, at 17 to 19 digits.
    for (const digits of [17, 18, 19]) {
      texts.push(mid.toPrecision(Math.min(digits, 21)));
      const [m, e] = mid.toExponential(digits - 1).split('e') as [string, string];
      const last = Number(m.at(-1));
      texts.push(`${m.slice(0, -1)}${Math.min(9, last + 1)}e${e}`, `${m.slice(0, -1)}${Math.max(0, last - 1)}e${e}`);
    }
  }
  // Long expansions (20 to 22 digits, exponent within ±22): the fast reading's error grows with every
  // digit past the 16th, which is why it gives up past 19.
  for (let i = 0; i < 4000; i++) {
    const f = Math.fround(0.1 + 0.8 * rng.next());
    const mid = (f + Math.fround(f * (1 + 2 ** -23))) / 2;
    for (const places of [20, 21, 22]) {
      const text = mid.toFixed(places);
      const last = Number(text.at(-1));
      texts.push(text, `${text.slice(0, -1)}${Math.min(9, last + 1)}`, `${text.slice(0, -1)}${Math.max(0, last - 1)}`);
    }
  }
  // Past 19 digits the error could outgrow the check's allowance: integers of 31 to 38 digits with 22
  // zero decimals (53 to 60 digits) at a midpoint must still be read exactly.
  for (let i = 0; i < 4000; i++) {
    const f = Math.fround((1 + rng.next()) * 10 ** (30 + Math.floor(rng.next() * 8)));
    const mid = (f + Math.fround(f * (1 + 2 ** -23))) / 2;
    texts.push(`${BigInt(mid)}.${'0'.repeat(22)}`);
  }
  const list = assertSameAsJsonParse(texts);
  // The bound toFloat32's check relies on: every approximation within 2^-50 of the exact double.
  const exactValues = list.toNumbers();
  for (let i = 0; i < texts.length; i++) {
    const v = list.values[i]!;
    if (!Number.isNaN(v)) assert.ok(Math.abs(v - exactValues[i]!) <= 2 ** -50 * Math.abs(exactValues[i]!), `${texts[i]}: ${v} vs ${exactValues[i]}`);
  }
  // The check has teeth: rounding the approximations directly gets some of these wrong.
  const misrounded = exactValues.filter((v, i) => Math.fround(list.values[i]!) !== Math.fround(v)).length;
  assert.ok(misrounded > 0, 'the approximate values alone misround at least one midpoint case');
});

test('decodeElements turns a NumberList into each element type exactly as it does the numbers JSON.parse gives', () => {
  const texts = ['1', '-2', '3.5', '127', '1e2', '0.30000000000000004'];
  const list = dataOf(parseInferJson(body(texts))) as NumberList;
  const numbers = texts.map(Number);
  assert.deepEqual(decodeElements(list, [2, 3], 'float32', 'x'), decodeElements(numbers, [2, 3], 'float32', 'x'));
  assert.deepEqual(decodeElements(list, [6], 'float64', 'x'), Float64Array.from(numbers));
  // The same errors, naming the same element, for types the numbers do not fit.
  for (const dtype of ['int32', 'int8', 'uint8', 'int64', 'bool'] as const) {
    const error = (data: unknown) => {
      try {
        decodeElements(data, [6], dtype, "input 'x'");
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    assert.equal(error(list), error(numbers), dtype);
  }
  assert.throws(() => decodeElements(list, [4], 'float32', "input 'x'"), /shape \[4\] needs 4 elements, data has 6/);
  assert.throws(() => decodeElements(list, [4, 4], 'float32', "input 'x'"), /should be a list of 4 .* \(a flat list needs 16\)/);
});

test('anything but a (regularly nested) list of strict JSON numbers at inputs[i].data is left to JSON.parse, with its results and errors', () => {
  const same = (text: string) => {
    const bytes = Buffer.from(text);
    let fast: unknown;
    let slow: unknown;
    try {
      fast = parseInferJson(bytes);
    } catch (err) {
      fast = err instanceof ServeError ? `${err.status} ${err.message}` : err;
    }
    try {
      slow = parseJson(text);
    } catch (err) {
      slow = err instanceof ServeError ? `${err.status} ${err.message}` : err;
    }
    const plain = (v: unknown) => JSON.parse(JSON.stringify(v, (_k, x) => (x instanceof NumberList ? x.toJson() : x)));
    assert.deepEqual(plain(fast), plain(slow), text);
    return fast;
  };
  const input = (data: string, extra = '') => `{"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":${data}}]${extra}}`;
  for (const bad of ['[01, 2]', '[1., 2]', '[.5, 2]', '[+1, 2]', '[-, 2]', '[1e, 2]', '[1e+, 2]', '[--1, 2]', '[0x10, 2]', '[1_000, 2]', '[1, 2,]', '[1 2]', '[1, 2', '[1, "2"]', '[1, null]', '[true, false]', '[0.1234:678, 2]', '[1234?678, 2]']) {
    const result = same(input(bad));
    if (typeof result === 'object') assert.ok(!(dataOf(result) instanceof NumberList), bad);
  }
  // Regular nesting is read with its shape; ragged nesting, TF Serving's NaN / Infinity tokens and
  // empty lists are not.
  assert.deepEqual((dataOf(same(input('[[1], [2]]'))) as NumberList).shape, [2, 1]);
  for (const ragged of ['[[1], [2, 3]]', '[[1], 2]', '[1, [2]]', '[[1, 2], [[3], [4]]]', '[[]]']) assert.ok(Array.isArray(dataOf(same(input(ragged)))), ragged);
  assert.ok(Number.isNaN((dataOf(same(input('[NaN, Infinity]'))) as number[])[0]));
  assert.deepEqual(dataOf(same(input('[]'))), []);
  // "data" lists anywhere else stay plain arrays: under parameters, in a key that merely ends in "data".
  const elsewhere = same(input('[1, 2]', ',"parameters":{"data":[3, 4]}')) as { parameters: { data: unknown } };
  assert.deepEqual(elsewhere.parameters.data, [3, 4]);
  const tricky = same('{"x\\"data":[1, 2],"inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1, 2]}]}') as Record<string, unknown>;
  assert.deepEqual(tricky['x"data'], [1, 2]);
  // A body already holding the placeholder text is parsed the ordinary way.
  const spoof = same(input('"\\u0000kiln-number-list:0"', ',"id":"[1]"')) as { inputs: { data: unknown }[] };
  assert.equal(spoof.inputs[0]!.data, '\u0000kiln-number-list:0');
  // Several inputs, each its own list; UTF-8 around them survives the cut.
  const two = same('{"id":"é—☃","inputs":[{"name":"a","shape":[2],"datatype":"FP32","data":[1.5, 2]},{"name":"b","shape":[1],"datatype":"FP32","data":[3]}]}') as {
    id: string;
    inputs: { data: NumberList }[];
  };
  assert.equal(two.id, 'é—☃');
  assert.deepEqual(two.inputs.map((i) => i.data.toNumbers()), [[1.5, 2], [3]]);
  // Bad JSON elsewhere in the body gets JSON.parse's message.
  same(input('[1, 2]', ',"id":'));
});

test('readNumberList reads flat and regularly nested lists with their shape, and refuses anything else', () => {
  const bytes = Buffer.from('x:[1, 2.5 ,-3e1] tail');
  const read = readNumberList(bytes, 2)!;
  assert.equal(bytes.toString('latin1', read.end), ' tail');
  assert.deepEqual(read.list.toNumbers(), [1, 2.5, -30]);
  assert.deepEqual(read.list.shape, [3]);
  assert.equal(read.list.approximate, false);
  const nested = readNumberList(Buffer.from('[ [[1, 2, 3], [4, 5, 6]] , [[7,8,9],[10,11,12]] ]'), 0)!;
  assert.deepEqual(nested.list.shape, [2, 2, 3]);
  assert.deepEqual(nested.list.toNumbers(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  assert.deepEqual(nested.list.toJson(), [[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [10, 11, 12]]]);
  // Exact values of an approximated nested list keep their order.
  const long = readNumberList(Buffer.from('[[0.10000000000000000555, 1], [2, 0.30000000000000004441]]'), 0)!;
  assert.equal(long.list.approximate, true);
  assert.deepEqual(long.list.toNumbers(), [0.1, 1, 2, 0.30000000000000004]);
  for (const text of ['[]', '[ ]', '[1,', '[1', '[[1], [2, 3]]', '[[1], 2]', '[1, [2]]', '[[]]', '[1,,2]', `${'['.repeat(17)}1${']'.repeat(17)}`]) {
    assert.equal(readNumberList(Buffer.from(text), 0), undefined, text);
  }
  assert.deepEqual(readNumberList(Buffer.from(`${'['.repeat(16)}1${']'.repeat(16)}`), 0)!.list.shape, Array(16).fill(1));
});

test('TF Serving bodies: "instances" and "inputs" lists of numbers are read, objects and everything under them are not', () => {
  const tf = (text: string) => parseInferJson(Buffer.from(text), 'tf-serving') as Record<string, unknown>;
  const rows = tf('{"signature_name": "serving_default", "instances": [[[0.5, 1], [2, 3]], [[4, 5], [6, 7]]]}');
  assert.ok(rows.instances instanceof NumberList);
  assert.deepEqual(rows.instances.shape, [2, 2, 2]);
  assert.equal(rows.signature_name, 'serving_default');
  const columns = tf('{"inputs": [1.0, 2.0, 5.0]}');
  assert.ok(columns.inputs instanceof NumberList);
  // Named inputs (objects) stay as JSON.parse gives them, lists inside them included.
  assert.deepEqual(tf('{"inputs": {"x": [1, 2], "y": [[3]]}}'), { inputs: { x: [1, 2], y: [[3]] } });
  assert.deepEqual(tf('{"instances": [{"x": [1, 2]}, {"x": [3, 4]}]}'), { instances: [{ x: [1, 2] }, { x: [3, 4] }] });
  // KServe's "data" key means nothing here, and TF's keys nothing to KServe.
  assert.deepEqual(tf('{"instances": [{"data": [1, 2]}]}'), { instances: [{ data: [1, 2] }] });
  assert.ok(Array.isArray((parseInferJson(Buffer.from('{"instances": [1, 2]}'), 'kserve') as Record<string, unknown>).instances));
});

test('over HTTP, 17-digit doubles, flat or nested, KServe v2 or TF Serving, give exactly what predict gives on their float32 values', async () => {
  const cnn = smallCnn();
  const server = await startServer({ model: cnn, name: 'cnn' });
  try {
    const rng = new Random(3);
    const doubles = Array.from({ length: 2 * 6 * 6 * 2 }, () => rng.next() * 4 - 2);
    const expected = (await cnn.predict(new Tensor(Float32Array.from(doubles), [2, 6, 6, 2], 'float32'))).data as Float32Array;
    const nested = Array.from({ length: 2 }, (_, n) => Array.from({ length: 6 }, (_, h) => Array.from({ length: 6 }, (_, w) => doubles.slice(((n * 6 + h) * 6 + w) * 2, ((n * 6 + h) * 6 + w) * 2 + 2))));
    for (const data of [doubles, nested]) {
      const reply = await http(server.url, 'POST', '/v2/models/cnn/infer', { inputs: [{ name: 'input', shape: [2, 6, 6, 2], datatype: 'FP32', data }] });
      assert.equal(reply.status, 200, reply.text);
      assert.deepEqual(Float32Array.from(reply.json.outputs[0].data as number[]), expected);
    }
    const rows = await http(server.url, 'POST', '/v1/models/cnn:predict', { instances: nested });
    assert.equal(rows.status, 200, rows.text);
    assert.deepEqual(Float32Array.from((rows.json.predictions as number[][]).flat()), expected);
    const columns = await http(server.url, 'POST', '/v1/models/cnn:predict', { inputs: nested });
    assert.deepEqual(Float32Array.from((columns.json.outputs as number[][]).flat()), expected);
  } finally {
    await server.close();
  }
});
