// Owns how a simulation deals a data set out to clients: IID (a random permutation cut into equal
// shards) or label-skewed non-IID, where client i holds an equal part of each of the classes
// i, i+1, …, i+k−1 (mod the number of classes) — with 10 clients and k = 2, half of class i and half
// of class i+1, the hard case.
import { KilnError } from '../errors.js';
import { Random } from '../random.js';

/** Example indices per client. */
export type ClientShards = Int32Array[];

/** IID: a seeded permutation of `n` examples cut into `clients` shards whose sizes differ by at most one. */
export function iidSplit(n: number, clients: number, seed = 42): ClientShards {
  checkClients(clients, n);
  const order = new Random(seed).permutation(n);
  const shards: ClientShards = [];
  let start = 0;
  for (let c = 0; c < clients; c++) {
    const size = Math.floor(n / clients) + (c < n % clients ? 1 : 0);
    shards.push(order.slice(start, start + size));
    start += size;
  }
  return shards;
}

/**
 * Label-skewed split: client i holds the classes (i + j) mod C for j < `classesPerClient`; each class's
 * examples (in a seeded random order) are cut into equal consecutive parts, one per client holding it,
 * the client for which it is the first class taking the first part. Labels must be class indices.
 */
export function nonIidSplit(labels: ArrayLike<number | bigint>, numClasses: number, clients: number, classesPerClient: number, seed = 42): ClientShards {
  checkClients(clients, labels.length);
  if (!Number.isInteger(classesPerClient) || classesPerClient < 1 || classesPerClient > numClasses) {
    throw new KilnError('INVALID_ARGUMENT', `non-IID split: classes per client must be an integer in [1, ${numClasses}], got ${classesPerClient}`);
  }
  const rng = new Random(seed);
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = Number(labels[i]);
    if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new KilnError('INVALID_DATA', `non-IID split: label ${i} is ${c}, expected a class index in [0, ${numClasses})`);
    byClass[c]!.push(i);
  }
  // Which clients hold class c, in the order they take its parts: the client whose first class it is first.
  const holders: number[][] = Array.from({ length: numClasses }, () => []);
  for (let j = 0; j < classesPerClient; j++) for (let i = 0; i < clients; i++) holders[(i + j) % numClasses]!.push(i);
  const parts: number[][] = Array.from({ length: clients }, () => []);
  for (let c = 0; c < numClasses; c++) {
    const who = holders[c]!;
    if (who.length === 0) continue;
    const perm = rng.permutation(byClass[c]!.length);
    const members = Array.from(perm, (k) => byClass[c]![k]!);
    who.forEach((client, p) => {
      const start = Math.floor((p * members.length) / who.length);
      const end = Math.floor(((p + 1) * members.length) / who.length);
      parts[client]!.push(...members.slice(start, end));
    });
  }
  return parts.map((p, i) => {
    if (p.length === 0) throw new KilnError('INVALID_DATA', `non-IID split: client ${i} got no examples (its classes are empty)`);
    return Int32Array.from(p);
  });
}

function checkClients(clients: number, n: number): void {
  if (!Number.isInteger(clients) || clients < 1) throw new KilnError('INVALID_ARGUMENT', `clients must be a positive integer, got ${clients}`);
  if (clients > n) throw new KilnError('INVALID_ARGUMENT', `${clients} clients but only ${n} examples to share among them`);
}
