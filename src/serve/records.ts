/*
 * Records keyed by names that come from clients or model files. A plain object answers `constructor`,
 * `toString` or `__proto__` from its prototype (and assigning `__proto__` replaces it), so such names
 * are only ever looked up in null-prototype records or through own properties.
 */

/** An empty record with no prototype: every name, `__proto__` included, is an ordinary key. */
export function record<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/** A null-prototype copy of an object's own enumerable properties. */
export function recordOf<T>(source: Record<string, T>): Record<string, T> {
  return Object.assign(record<T>(), Object.fromEntries(Object.entries(source)));
}

/** The object's own property `key`, never an inherited one. */
export function own(source: object, key: string): unknown {
  return Object.hasOwn(source, key) ? (source as Record<string, unknown>)[key] : undefined;
}
