import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readTar } from '../../src/data/tar.js';
import { assertRejectsWith, tarArchive, tarHeader } from './fixtures.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
const decode = (b: Uint8Array): string => new TextDecoder().decode(b);

describe('readTar', () => {
  it('lists regular files with their contents and skips directories', () => {
    const entries = readTar(
      tarArchive([
        { name: 'folder/', type: '5' },
        { name: 'folder/a.txt', data: text('hello') },
        { name: 'folder/empty', data: new Uint8Array(0) },
        { name: 'folder/big.bin', data: new Uint8Array(1300).fill(9) },
      ]),
      'test.tar',
    );
    assert.deepEqual(
      entries.map((e) => [e.name, e.data.length]),
      [
        ['folder/a.txt', 5],
        ['folder/empty', 0],
        ['folder/big.bin', 1300],
      ],
    );
    assert.equal(decode(entries[0]!.data), 'hello');
    assert.ok(entries[2]!.data.every((b) => b === 9));
  });

  it('joins the ustar prefix, and honours GNU long names and pax paths', () => {
    const longName = `${'d'.repeat(120)}/file.bin`;
    const entries = readTar(
      tarArchive([
        { name: 'file.txt', prefix: 'some/deep/folder', data: text('a') },
        { name: '././@LongLink', type: 'L', data: text(`${longName}\0`) },
        { name: 'truncated-name', data: text('b') },
        { name: 'PaxHeaders/x', type: 'x', data: text('27 path=pax/named/file.txt\n') },
        { name: 'short', data: text('c') },
      ]),
      'test.tar',
    );
    assert.deepEqual(
      entries.map((e) => e.name),
      ['some/deep/folder/file.txt', longName, 'pax/named/file.txt'],
    );
  });

  it('rejects a header with a wrong checksum, naming the archive', async () => {
    const archive = tarArchive([{ name: 'a.txt', data: text('hello') }]);
    archive[0] = 'b'.charCodeAt(0);
    await assertRejectsWith(() => readTar(archive, 'broken.tar'), 'CORRUPT_FILE', 'broken.tar', 'checksum');
  });

  it('rejects an entry cut short', async () => {
    const archive = tarArchive([{ name: 'a.bin', data: new Uint8Array(2000) }]).subarray(0, 1024);
    await assertRejectsWith(() => readTar(archive, 'short.tar'), 'CORRUPT_FILE', 'short.tar', 'truncated', 'a.bin');
  });

  it('accepts an archive that stops without end-of-archive blocks', () => {
    const header = tarHeader({ name: 'a.txt', data: text('xy') });
    const archive = new Uint8Array(1024);
    archive.set(header);
    archive.set(text('xy'), 512);
    assert.equal(readTar(archive, 'unterminated.tar').length, 1);
  });
});
