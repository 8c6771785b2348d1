import { KilnError } from '../errors.js';

/**
 * A minimal reader for POSIX tar archives (ustar, with GNU long names and pax path records),
 * enough for data-set archives without a dependency. Entries share memory with the archive.
 */
/** One file of a tar archive. */
export interface TarEntry {
  /** Its path inside the archive. */
  name: string;
  /** Its contents. */
  data: Uint8Array;
}

const BLOCK = 512;
const decoder = new TextDecoder();

function field(header: Uint8Array, offset: number, length: number): string {
  const bytes = header.subarray(offset, offset + length);
  const end = bytes.indexOf(0);
  return decoder.decode(end === -1 ? bytes : bytes.subarray(0, end));
}

function octal(header: Uint8Array, offset: number, length: number, archiveName: string, what: string): number {
  const text = field(header, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) {
    throw new KilnError('CORRUPT_FILE', `${archiveName}: expected an octal ${what} in a tar header, found "${text}"`);
  }
  return text === '' ? 0 : parseInt(text, 8);
}

/** The header checksum is the byte sum with the checksum field itself read as eight spaces. */
function checksumOf(header: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum;
}

/** The `path` record of a pax extended header, if it has one ("<length> path=<value>\n"). */
function paxPath(data: Uint8Array): string | undefined {
  for (const record of decoder.decode(data).split('\n')) {
    const match = /^\d+ path=(.*)$/.exec(record);
    if (match) return match[1];
  }
  return undefined;
}

/** Lists the regular files in an (uncompressed) tar archive. */
export function readTar(archive: Uint8Array, archiveName: string): TarEntry[] {
  const entries: TarEntry[] = [];
  let offset = 0;
  let pendingName: string | undefined;
  while (offset + BLOCK <= archive.length) {
    const header = archive.subarray(offset, offset + BLOCK);
    if (header.every((b) => b === 0)) return entries;
    const recorded = octal(header, 148, 8, archiveName, 'checksum');
    const computed = checksumOf(header);
    if (recorded !== computed) {
      throw new KilnError(
        'CORRUPT_FILE',
        `${archiveName}: tar header at byte ${offset} has checksum ${recorded}, expected ${computed}; not a tar archive or damaged`,
      );
    }
    const size = octal(header, 124, 12, archiveName, 'size');
    const dataStart = offset + BLOCK;
    if (dataStart + size > archive.length) {
      throw new KilnError(
        'CORRUPT_FILE',
        `${archiveName}: truncated: tar entry "${field(header, 0, 100)}" needs ${size} bytes at byte ${dataStart}, ` +
          `archive has ${archive.length} bytes`,
      );
    }
    const data = archive.subarray(dataStart, dataStart + size);
    const type = String.fromCharCode(header[156]!);
    const prefix = field(header, 257, 6) === 'ustar' ? field(header, 345, 155) : '';
    const headerName = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    if (type === 'L') {
      pendingName = field(data, 0, data.length);
    } else if (type === 'x') {
      pendingName = paxPath(data) ?? pendingName;
    } else {
      if (type === '0' || type === '\0' || type === '7') entries.push({ name: pendingName ?? headerName, data });
      pendingName = undefined;
    }
    offset = dataStart + Math.ceil(size / BLOCK) * BLOCK;
  }
  if (offset !== archive.length) {
    throw new KilnError(
      'CORRUPT_FILE',
      `${archiveName}: truncated: expected 512-byte tar blocks, found ${archive.length - offset} stray bytes at byte ${offset}`,
    );
  }
  // Archives should end with two zero blocks, but tar itself accepts one that simply stops.
  return entries;
}
