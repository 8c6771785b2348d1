import { KilnError } from '../errors.js';
import type { ModelProto } from '../graph/proto.js';

/*
 * Which output of a model with several (a PyTorch forward returning (logits, features)) is the one
 * trained, evaluated, predicted, served as a classifier and distilled from: what this file owns.
 */

/** Metadata key of the output a model of several trains (the first when absent). */
export const OUTPUT_METADATA_KEY = 'kiln.output';

/**
 * The output a model of several trains, evaluates and predicts: the one given, else the one its file
 * records (saved by Kiln), else the first — PyTorch's first returned value, as exporters write it.
 */
export function trainedOutput(proto: ModelProto, file: string, given?: string): string {
  const names = (proto.graph?.output ?? []).map((o) => o.name ?? '');
  const recorded = (proto.metadataProps ?? []).find((m) => m.key === OUTPUT_METADATA_KEY)?.value ?? undefined;
  const chosen = given ?? (recorded && names.includes(recorded) ? recorded : undefined) ?? names[0]!;
  if (!names.includes(chosen)) {
    throw new KilnError('INVALID_ARGUMENT', `'${file}' has no output '${chosen}': its outputs are ${names.map((n) => `'${n}'`).join(', ')} (--model-output / { output } names one)`);
  }
  return chosen;
}
