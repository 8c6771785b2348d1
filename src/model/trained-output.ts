import { KilnError } from '../errors.js';
import type { ModelProto } from '../graph/proto.js';

/*
 * Which output of a model with several (a PyTorch forward returning (logits, features)) is the one
 * trained, evaluated, predicted, served as a classifier and distilled from: what this file owns.
 */

/** Metadata key of the output a model of several trains (the first float one when absent). */
export const OUTPUT_METADATA_KEY = 'kiln.output';

/**
 * The output a model of several trains, evaluates and predicts: the one given, else the one its file
 * records (saved by Kiln), else the first float one — PyTorch's first returned value, as exporters
 * write it, unless that is an integer class or a flag.
 */
export function trainedOutput(proto: ModelProto, file: string, given?: string): string {
  const names = (proto.graph?.output ?? []).map((o) => o.name ?? '');
  const recorded = (proto.metadataProps ?? []).find((m) => m.key === OUTPUT_METADATA_KEY)?.value ?? undefined;
  const outputs = (proto.graph?.output ?? []).map((o) => ({ name: o.name ?? '', float: o.type?.tensorType?.elemType === 1 }));
  const chosen = given ?? defaultOutput(outputs, recorded ?? undefined);
  if (!names.includes(chosen)) {
    throw new KilnError('INVALID_ARGUMENT', `'${file}' has no output '${chosen}': its outputs are ${names.map((n) => `'${n}'`).join(', ')} (--model-output / { output } names one)`);
  }
  return chosen;
}

/**
 * The output a model trains and a server lists first when none is named: the one its file records
 * (saved by Kiln), else the first float one — an exporter may list an argmax's class before the
 * logits —, else the first.
 */
export function defaultOutput(outputs: readonly { name: string; float: boolean }[], recorded: string | undefined): string {
  if (recorded !== undefined && outputs.some((o) => o.name === recorded)) return recorded;
  return (outputs.find((o) => o.float) ?? outputs[0])?.name ?? '';
}
