import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJson, stringifyJson } from '../../src/serve/json.js';
import { ServeError } from '../../src/serve/errors.js';

test('parseJson reads strict JSON and TF Serving NaN / Infinity / -Infinity tokens, not inside strings', () => {
  assert.deepEqual(parseJson('{"a":[1,2.5,-3e2]}'), { a: [1, 2.5, -300] });
  const v = parseJson('{"s":"NaN Infinity","x":[NaN, Infinity,-Infinity], "t": "a\\"NaN"}') as { s: string; x: number[]; t: string };
  assert.equal(v.s, 'NaN Infinity');
  assert.equal(v.t, 'a"NaN');
  assert.ok(Number.isNaN(v.x[0]));
  assert.deepEqual(v.x.slice(1), [Infinity, -Infinity]);
});

test('parseJson refuses bad JSON and empty bodies with a 400 naming the problem', () => {
  for (const [text, pattern] of [
    ['', /empty/],
    ['   ', /empty/],
    ['{"a":', /not valid JSON/],
    ['{"a": NaNa}', /not valid JSON/],
    ["{'a': 1}", /not valid JSON/],
  ] as const) {
    assert.throws(() => parseJson(text), (err: unknown) => err instanceof ServeError && err.status === 400 && pattern.test(err.message));
  }
});

test('stringifyJson writes non-finite numbers as tokens that parseJson reads back', () => {
  const text = stringifyJson({ a: [NaN, Infinity, -Infinity, 1.5], s: 'NaN' });
  assert.equal(text, '{"a":[NaN,Infinity,-Infinity,1.5],"s":"NaN"}');
  const back = parseJson(text) as { a: number[] };
  assert.ok(Number.isNaN(back.a[0]));
  assert.equal(stringifyJson({ a: [1] }, false), '{"a":[1]}');
});
