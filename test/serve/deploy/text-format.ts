/*
 * A protobuf text-format parser for the deploy tests (config.pbtxt): it reads a message against a
 * protobufjs Type and refuses what the schema does not allow — an unknown field, a value of the wrong
 * kind, an enum name the enum lacks, a singular field given twice, two members of one oneof.
 */
import protobuf from 'protobufjs';

type Token = { kind: 'name' | 'number' | 'string' | 'punct'; text: string; at: number };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  const re = /\s+|#[^\n]*|([A-Za-z_][A-Za-z0-9_.]*)|(-?(?:[0-9]+\.?[0-9]*(?:[eE][-+]?[0-9]+)?|inf|nan))|("(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|([{}[\]<>:,;])/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < text.length) {
    re.lastIndex = at;
    m = re.exec(text);
    if (!m) throw new Error(`text format: unexpected character ${JSON.stringify(text[at])} at ${at}`);
    if (m[1] !== undefined) tokens.push({ kind: 'name', text: m[1], at });
    else if (m[2] !== undefined) tokens.push({ kind: 'number', text: m[2], at });
    else if (m[3] !== undefined) tokens.push({ kind: 'string', text: m[3], at });
    else if (m[4] !== undefined) tokens.push({ kind: 'punct', text: m[4], at });
    at = re.lastIndex;
  }
  return tokens;
}

/** A quoted string's bytes as UTF-8 text (C escapes, \ooo octal and \xHH bytes). */
function unquote(token: string): string {
  const body = token.slice(1, -1);
  const bytes: number[] = [];
  const simple: Record<string, number> = { n: 10, t: 9, r: 13, '"': 34, "'": 39, '\\': 92, a: 7, b: 8, f: 12, v: 11 };
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c !== '\\') {
      bytes.push(...Buffer.from(c, 'utf8'));
      continue;
    }
    const e = body[++i]!;
    if (/[0-7]/.test(e)) {
      const oct = /^[0-7]{1,3}/.exec(body.slice(i))![0];
      bytes.push(parseInt(oct, 8));
      i += oct.length - 1;
    } else if (e === 'x') {
      const hex = /^[0-9a-fA-F]{1,2}/.exec(body.slice(i + 1))![0];
      bytes.push(parseInt(hex, 16));
      i += hex.length;
    } else if (e in simple) bytes.push(simple[e]!);
    else throw new Error(`text format: unknown escape \\${e}`);
  }
  return Buffer.from(bytes).toString('utf8');
}

const INTEGER = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64']);

export function parseTextFormat(type: protobuf.Type, text: string): Record<string, unknown> {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const next = () => {
    const t = tokens[pos++];
    if (!t) throw new Error('text format: unexpected end');
    return t;
  };
  const expect = (p: string) => {
    const t = next();
    if (t.kind !== 'punct' || t.text !== p) throw new Error(`text format: expected '${p}' at ${t.at}, found ${t.text}`);
  };

  function scalar(field: protobuf.Field, where: string): unknown {
    const t = next();
    if (field.resolvedType instanceof protobuf.Enum) {
      if (t.kind !== 'name' || !(t.text in field.resolvedType.values)) throw new Error(`${where}: ${t.text} is not a value of enum ${field.resolvedType.name}`);
      return t.text;
    }
    if (field.type === 'string' || field.type === 'bytes') {
      if (t.kind !== 'string') throw new Error(`${where}: expected a string, found ${t.text}`);
      return unquote(t.text);
    }
    if (field.type === 'bool') {
      if (t.kind !== 'name' || !['true', 'false'].includes(t.text)) throw new Error(`${where}: expected true or false, found ${t.text}`);
      return t.text === 'true';
    }
    if (t.kind !== 'number') throw new Error(`${where}: expected a number, found ${t.text}`);
    const n = Number(t.text);
    if (INTEGER.has(field.type) && !Number.isInteger(n)) throw new Error(`${where}: expected an integer, found ${t.text}`);
    if (field.type.startsWith('uint') && n < 0) throw new Error(`${where}: expected an unsigned integer, found ${t.text}`);
    return n;
  }

  function value(field: protobuf.Field, where: string): unknown {
    const messageType = field instanceof protobuf.MapField ? null : field.resolvedType instanceof protobuf.Type ? field.resolvedType : null;
    if (field instanceof protobuf.MapField) {
      const entry = new protobuf.Type(`${field.name}Entry`).add(new protobuf.Field('key', 1, field.keyType)).add(new protobuf.Field('value', 2, field.type));
      entry.fields.value!.resolvedType = field.resolvedType;
      return block(entry, where);
    }
    if (messageType) return block(messageType, where);
    return scalar(field, where);
  }

  function block(t: protobuf.Type, where: string): Record<string, unknown> {
    const open = next();
    if (open.kind !== 'punct' || (open.text !== '{' && open.text !== '<')) throw new Error(`${where}: expected a message in { }, found ${open.text}`);
    const out = fields(t, where, open.text === '{' ? '}' : '>');
    return out;
  }

  function fields(t: protobuf.Type, where: string, close: string | undefined): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const oneofs = new Map<string, string>();
    for (;;) {
      const tok = peek();
      if (tok === undefined) {
        if (close !== undefined) throw new Error(`${where}: missing '${close}'`);
        return out;
      }
      if (tok.kind === 'punct' && tok.text === close) {
        pos++;
        return out;
      }
      if (tok.kind === 'punct' && (tok.text === ',' || tok.text === ';')) {
        pos++;
        continue;
      }
      const name = next();
      if (name.kind !== 'name') throw new Error(`${where}: expected a field name at ${name.at}, found ${name.text}`);
      const field = t.fields[name.text];
      const path = `${where}.${name.text}`;
      if (!field) throw new Error(`${path}: ${t.name} has no field '${name.text}' (fields: ${Object.keys(t.fields).join(', ')})`);
      if (field.partOf) {
        const other = oneofs.get(field.partOf.name);
        if (other !== undefined && other !== name.text) throw new Error(`${path}: oneof ${field.partOf.name} already has ${other}`);
        oneofs.set(field.partOf.name, name.text);
      }
      const repeated = field.repeated || field instanceof protobuf.MapField;
      const sep = peek();
      if (sep?.kind === 'punct' && sep.text === ':') pos++;
      const values: unknown[] = [];
      const after = peek();
      if (after?.kind === 'punct' && after.text === '[') {
        if (!repeated) throw new Error(`${path}: a list for a singular field`);
        pos++;
        while (!(peek()?.kind === 'punct' && peek()!.text === ']')) {
          values.push(value(field, `${path}[${values.length}]`));
          if (peek()?.kind === 'punct' && peek()!.text === ',') pos++;
        }
        expect(']');
      } else values.push(value(field, path));
      if (repeated) out[name.text] = [...((out[name.text] as unknown[]) ?? []), ...values];
      else {
        if (name.text in out) throw new Error(`${path}: singular field given twice`);
        out[name.text] = values[0];
      }
    }
  }

  return fields(type, type.name, undefined);
}
