// Owns the coordinator's round checkpoint: after every round, the global weights, the strategy's
// server state and where the run stands, written atomically (one file, replaced by rename) so a
// killed coordinator resumes from the last finished round — never from a half-written one.
import { promises as fs } from 'node:fs';
import { KilnError } from '../../errors.js';
import { writeFileAtomic } from '../../model/atomic-write.js';
import { decodeEnvelope, encodeEnvelope, packWeights, unpackWeights } from '../transport/envelope.js';
import type { ModelWeights } from '../weights.js';

/** What a round checkpoint holds. */
export interface RoundCheckpoint {
  /** The federation's model id: a checkpoint of another starting model is refused. */
  modelId: string;
  /** The last finished round (its aggregate is `weights`). */
  round: number;
  /** The strategy's name: resuming with another strategy is refused. */
  strategy: string;
  /** The strategy's server state (`Strategy.state()`), JSON. */
  strategyState: unknown;
  /** The global weights after `round`. */
  weights: ModelWeights;
}

/** Writes the checkpoint atomically. */
export async function saveRoundCheckpoint(file: string, c: RoundCheckpoint): Promise<void> {
  const { specs, payload } = packWeights(c.weights);
  await writeFileAtomic(file, encodeEnvelope({ kind: 'checkpoint', modelId: c.modelId, round: c.round, strategy: c.strategy, strategyState: c.strategyState, weights: specs }, payload));
}

/** Reads a checkpoint, or undefined when there is none yet. */
export async function loadRoundCheckpoint(file: string): Promise<RoundCheckpoint | undefined> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('IO_ERROR', `cannot read the federated checkpoint '${file}': ${(err as Error).message}`);
  }
  let envelope;
  try {
    envelope = decodeEnvelope(bytes, `federated checkpoint '${file}'`);
  } catch (err) {
    throw new KilnError('CORRUPT_FILE', (err as Error).message);
  }
  const { header, payload } = envelope;
  if (header.kind !== 'checkpoint' || typeof header.strategy !== 'string') throw new KilnError('CORRUPT_FILE', `'${file}' is not a federated round checkpoint (kind ${JSON.stringify(header.kind)})`);
  return { modelId: header.modelId, round: header.round, strategy: header.strategy, strategyState: header.strategyState, weights: unpackWeights(header.weights, payload, `federated checkpoint '${file}'`) };
}
