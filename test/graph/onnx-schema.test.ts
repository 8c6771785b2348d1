/*
 * Kiln's hand-declared ONNX schema (src/graph/proto.ts) against the official one
 * (third_party/onnx/onnx.proto): every message and field Kiln declares exists there with the same
 * number, type and repeatedness. Kiln writes enum fields as int32 (the same varint on the wire).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { onnxSchema } from '../../src/graph/proto.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const official = protobuf.parse(readFileSync(path.join(ROOT, 'third_party', 'onnx', 'onnx.proto'), 'utf8'), { keepCase: false }).root;
official.resolveAll();
onnxSchema.resolveAll();

/** Every message type under a namespace, nested ones included. */
function messages(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.flatMap((n) => (n instanceof protobuf.Type ? [n, ...messages(n)] : n instanceof protobuf.Namespace ? messages(n) : []));
}

/** A field's type as the wire sees it: message types by full name, enums as int32, scalars by name. */
function wireType(field: protobuf.Field): string {
  if (field.resolvedType instanceof protobuf.Type) return field.resolvedType.fullName;
  if (field.resolvedType instanceof protobuf.Enum) return 'int32';
  return field.type;
}

test('the hand schema declares messages', () => {
  assert.ok(messages(onnxSchema).length >= 15);
});

test('every message and field Kiln declares matches onnx.proto: name, number, type, repeated', () => {
  const problems: string[] = [];
  // Top-level messages pair by name; nested ones by the field that refers to them (a nested message's
  // own name is not on the wire: Kiln's TypeProto.TensorType is onnx.proto's TypeProto.Tensor).
  const pending: [protobuf.Type, protobuf.Type][] = [];
  for (const mine of (onnxSchema.lookup('onnx') as protobuf.Namespace).nestedArray.filter((n): n is protobuf.Type => n instanceof protobuf.Type)) {
    const theirs = official.lookup(mine.fullName);
    if (theirs instanceof protobuf.Type) pending.push([mine, theirs]);
    else problems.push(`${mine.fullName}: no such message in onnx.proto`);
  }
  const compared = new Set<string>();
  while (pending.length > 0) {
    const [mine, theirs] = pending.pop()!;
    const key = `${mine.fullName}=${theirs.fullName}`;
    if (compared.has(key)) continue;
    compared.add(key);
    for (const field of mine.fieldsArray) {
      const where = `${mine.fullName}.${field.name}`;
      const ref = theirs.fields[field.name];
      if (!ref) {
        problems.push(`${where}: no field of that name in ${theirs.fullName} (its fields: ${Object.keys(theirs.fields).join(', ')})`);
        continue;
      }
      if (ref.id !== field.id) problems.push(`${where}: number ${field.id}, onnx.proto has ${ref.id}`);
      if (ref.repeated !== field.repeated) problems.push(`${where}: ${field.repeated ? 'repeated' : 'single'}, onnx.proto has it ${ref.repeated ? 'repeated' : 'single'}`);
      const mineIsMessage = field.resolvedType instanceof protobuf.Type;
      const theirsIsMessage = ref.resolvedType instanceof protobuf.Type;
      if (mineIsMessage && theirsIsMessage) pending.push([field.resolvedType as protobuf.Type, ref.resolvedType as protobuf.Type]);
      else if (mineIsMessage || theirsIsMessage || wireType(ref) !== wireType(field)) problems.push(`${where}: type ${wireType(field)}, onnx.proto has ${wireType(ref)}`);
    }
  }
  // Every message Kiln declares was reached (and so compared) from a top-level one.
  for (const mine of messages(onnxSchema)) {
    if (![...compared].some((k) => k.startsWith(`${mine.fullName}=`))) problems.push(`${mine.fullName}: not reached from any top-level message, so not compared`);
  }
  assert.deepEqual(problems, [], `src/graph/proto.ts differs from third_party/onnx/onnx.proto:\n${problems.join('\n')}`);
});
