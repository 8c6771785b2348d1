/*
 * Kiln's hand-declared KServe v2 gRPC messages (src/serve/grpc/messages.ts) and service methods
 * (service.ts) against the protocol's text (src/serve/grpc/grpc_predict_v2.proto): every message and
 * field with the same number, type, repeatedness and map key; every RPC with its request and response.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import protobuf from 'protobufjs';
import { inferenceSchema } from '../../../src/serve/grpc/messages.js';
import { METHODS } from '../../../src/serve/grpc/service.js';
import { PROTO_FILE } from './proto-client.js';

const official = protobuf.parse(readFileSync(PROTO_FILE, 'utf8'), { keepCase: true }).root;
official.resolveAll();
inferenceSchema.resolveAll();

function messages(ns: protobuf.NamespaceBase): protobuf.Type[] {
  return ns.nestedArray.flatMap((n) => (n instanceof protobuf.Type ? [n, ...messages(n)] : n instanceof protobuf.Namespace ? messages(n) : []));
}

test('every message of the .proto is declared, with the same fields: number, type, repeated, map key', () => {
  const problems: string[] = [];
  const theirs = messages(official);
  assert.equal(theirs.length, 18);
  for (const ref of theirs) {
    const mine = inferenceSchema.lookup(ref.fullName);
    if (!(mine instanceof protobuf.Type)) {
      problems.push(`${ref.fullName}: not declared in messages.ts`);
      continue;
    }
    const names = new Set([...Object.keys(ref.fields), ...Object.keys(mine.fields)]);
    for (const name of names) {
      const a = mine.fields[name];
      const b = ref.fields[name];
      const where = `${ref.fullName}.${name}`;
      if (!a || !b) {
        problems.push(`${where}: ${a ? 'not in the .proto' : 'not declared in messages.ts'}`);
        continue;
      }
      if (a.id !== b.id) problems.push(`${where}: number ${a.id}, the .proto has ${b.id}`);
      if (a.repeated !== b.repeated) problems.push(`${where}: repeated ${a.repeated}, the .proto ${b.repeated}`);
      const typeOf = (f: protobuf.Field) => (f.resolvedType ? f.resolvedType.fullName : f.type);
      if (typeOf(a) !== typeOf(b)) problems.push(`${where}: type ${typeOf(a)}, the .proto has ${typeOf(b)}`);
      const keyOf = (f: protobuf.Field) => (f instanceof protobuf.MapField ? f.keyType : undefined);
      if (keyOf(a) !== keyOf(b)) problems.push(`${where}: map key ${keyOf(a)}, the .proto has ${keyOf(b)}`);
      if (a.partOf?.name !== b.partOf?.name) problems.push(`${where}: oneof ${a.partOf?.name}, the .proto has ${b.partOf?.name}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the service declares the six RPCs of the .proto with their request and response messages', () => {
  const service = official.lookupService('inference.GRPCInferenceService');
  const declared = Object.fromEntries(Object.entries(METHODS).map(([name, [req, res]]) => [name, [`.inference.${req}`, `.inference.${res}`]]));
  const proto = Object.fromEntries(service.methodsArray.map((m) => [m.name, [m.resolvedRequestType!.fullName, m.resolvedResponseType!.fullName]]));
  assert.deepEqual(declared, proto);
});
