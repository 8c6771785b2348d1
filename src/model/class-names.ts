import { KilnError } from '../errors.js';

/*
 * A classifier's class names, saved with the model (metadata 'kiln.labels', a JSON list indexed by
 * class): written when a model is trained on a data set that names its classes (Fashion-MNIST's
 * ten, CIFAR-10's), read by servers to answer with labels instead of indices.
 */

/** Metadata key of the class names (a JSON list of strings, one per output class). */
export const CLASS_NAMES_METADATA_KEY = 'kiln.labels';

/** The class names a metadata entry holds (its JSON text), or undefined when there is no entry. */
export function parseClassNames(entry: string | undefined, file = 'the model'): string[] | undefined {
  if (entry === undefined || entry === '') return undefined;
  let names: unknown;
  try {
    names = JSON.parse(entry);
  } catch (err) {
    throw new KilnError('CORRUPT_FILE', `${file}: metadata '${CLASS_NAMES_METADATA_KEY}' is not valid JSON (${(err as Error).message})`);
  }
  checkClassNames(names, `${file}: metadata '${CLASS_NAMES_METADATA_KEY}'`);
  return names;
}

/** Throws unless `names` is a non-empty list of strings. */
export function checkClassNames(names: unknown, what: string): asserts names is string[] {
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
    throw new KilnError('INVALID_ARGUMENT', `${what} must be a non-empty list of class names (strings), found ${JSON.stringify(names)?.slice(0, 80)}`);
  }
}
