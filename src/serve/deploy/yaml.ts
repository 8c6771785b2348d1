/*
 * A small YAML writer for Kubernetes manifests: maps, lists, strings, numbers and booleans, in block
 * style. Strings are written plain when YAML reads them back as the same string, else double-quoted
 * with JSON's escapes (a JSON string is a valid YAML double-quoted scalar).
 */

export type YamlValue = string | number | boolean | YamlValue[] | { [key: string]: YamlValue | undefined };

/** Plain scalars that YAML would read as something other than this string (null, booleans, numbers, syntax). */
function needsQuotes(s: string): boolean {
  if (s === '' || s.trim() !== s) return true;
  if (/^(null|~|true|false|yes|no|on|off|y|n)$/i.test(s)) return true;
  if (/^[-+.]?[0-9]/.test(s) || /^\.(inf|nan)$/i.test(s)) return true;
  if (/^[-?:,[\]{}#&*!|>'"%@`]/.test(s)) return true;
  return /: |\s#|[\u0000-\u001f\u007f]/.test(s) || s.endsWith(':');
}

function scalar(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  return needsQuotes(v) ? JSON.stringify(v) : v;
}

function isScalar(v: YamlValue): v is string | number | boolean {
  return typeof v !== 'object';
}

function lines(value: YamlValue, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}[]`];
    return value.flatMap((item) => {
      if (isScalar(item)) return [`${indent}- ${scalar(item)}`];
      const inner = lines(item, `${indent}  `);
      if (inner.length === 1 && /^\s*(\[\]|\{\})$/.test(inner[0]!)) return [`${indent}- ${inner[0]!.trim()}`];
      return [`${indent}- ${inner[0]!.slice(indent.length + 2)}`, ...inner.slice(1)];
    });
  }
  if (isScalar(value)) return [`${indent}${scalar(value)}`];
  const entries = Object.entries(value).filter((e): e is [string, YamlValue] => e[1] !== undefined);
  if (entries.length === 0) return [`${indent}{}`];
  return entries.flatMap(([key, v]) => {
    const k = scalar(key);
    if (isScalar(v)) return [`${indent}${k}: ${scalar(v)}`];
    const inner = lines(v, Array.isArray(v) ? indent : `${indent}  `);
    if (inner.length === 1 && /^\s*(\[\]|\{\})$/.test(inner[0]!)) return [`${indent}${k}: ${inner[0]!.trim()}`];
    return [`${indent}${k}:`, ...inner];
  });
}

/** One YAML document, with optional comment lines before it. */
export function toYaml(value: YamlValue, comments: string[] = []): string {
  return [...comments.map((c) => `# ${c}`), ...lines(value, '')].join('\n') + '\n';
}
