/**
 * Graph.uniqueName: the hint itself, else hint_i for the smallest free i — also where names were
 * taken by other means between calls — resuming each hint's search where it stopped (an unrolled
 * recurrent layer asks for the same hints thousands of times).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Graph } from '../../src/graph/graph.js';

describe('Graph.uniqueName', () => {
  it('gives the hint, then the smallest free suffix, skipping names taken by inputs and node outputs', () => {
    const g = new Graph('names');
    assert.equal(g.uniqueName('a'), 'a');
    assert.equal(g.uniqueName('a'), 'a_1');
    g.input('a_2', 'float32', [1]);
    g.input('a_4', 'float32', [1]);
    assert.equal(g.uniqueName('a'), 'a_3');
    assert.equal(g.uniqueName('a'), 'a_5');
    // Another hint whose names look like a's suffixes does not disturb a's count.
    assert.equal(g.uniqueName('a_6'), 'a_6');
    assert.equal(g.uniqueName('a'), 'a_7');
    assert.equal(g.uniqueName('b'), 'b');
    const [y] = g.op('Identity', [g.value('a_2')], {}, { outputs: ['b_1'] });
    assert.equal(y!.name, 'b_1');
    assert.equal(g.uniqueName('b'), 'b_2');
  });

  it('names many values of one hint as the first-free rule would', () => {
    const g = new Graph('many');
    const names = Array.from({ length: 5000 }, () => g.uniqueName('scalar'));
    assert.deepEqual(names.slice(0, 3), ['scalar', 'scalar_1', 'scalar_2']);
    assert.equal(names.at(-1), 'scalar_4999');
    assert.equal(new Set(names).size, 5000);
  });
});
