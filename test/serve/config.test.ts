import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_MODEL_CONFIG, isValidName, parseModelConfig, parseVersion, selectVersions } from '../../src/serve/config.js';

test('model config: fields over defaults; unknown fields and wrong types say what was expected', () => {
  const c = parseModelConfig({ maxBatchSize: 16, maxQueueDelayMs: 2.5, versionPolicy: { latest: 2 }, versionLabels: { stable: 3 }, labels: ['a', 'b'] }, DEFAULT_MODEL_CONFIG, 'config.json');
  assert.equal(c.maxBatchSize, 16);
  assert.equal(c.maxQueueDelayMs, 2.5);
  assert.equal(c.maxQueueSize, DEFAULT_MODEL_CONFIG.maxQueueSize);
  assert.deepEqual(c.versionPolicy, { latest: 2 });
  for (const [raw, pattern] of [
    [{ maxBatchSiz: 4 }, /unknown field "maxBatchSiz"/],
    [{ maxBatchSize: -1 }, /"maxBatchSize" must be an integer >= 0, found -1/],
    [{ versionPolicy: { newest: 1 } }, /"versionPolicy" must be "all", \{"latest": N\} or \{"specific": \[versions\]\}/],
    [{ versionLabels: { '../x': 1 } }, /version label/],
    [{ maxQueueDelayMs: 'soon' }, /"maxQueueDelayMs" must be a number/],
    [[1], /expected a JSON object/],
  ] as const) {
    assert.throws(() => parseModelConfig(raw, DEFAULT_MODEL_CONFIG, 'config.json'), pattern);
  }
});

test('version policies select from the versions on disk', () => {
  assert.deepEqual(selectVersions({ latest: 1 }, [1, 3, 2]), [3]);
  assert.deepEqual(selectVersions({ latest: 2 }, [1, 3, 2]), [3, 2]);
  assert.deepEqual(selectVersions({ specific: [1, 5] }, [1, 3, 2]), [1]);
  assert.deepEqual(selectVersions('all', [1, 3, 2]), [3, 2, 1]);
});

test('model names and versions cannot name paths', () => {
  for (const ok of ['cnn', 'resnet-50', 'my_model.v2', 'A1']) assert.ok(isValidName(ok), ok);
  for (const bad of ['', '.', '..', '../etc', 'a/b', 'a\\b', '.hidden', '-x', 'a b', 'x'.repeat(129)]) assert.ok(!isValidName(bad), bad);
  assert.equal(parseVersion('12'), 12);
  for (const bad of ['0', '01', '-1', '1.5', '1e3', 'x', '', '9'.repeat(16)]) assert.equal(parseVersion(bad), undefined, bad);
});
