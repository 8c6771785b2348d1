import { Ajv, type ErrorObject } from 'ajv';

/*
 * JSON-schema checks of inference bodies, run inside the routes' shared handlers (so the Fastify
 * routes and the fast path check alike). Ajv with the options Fastify's validator used for these
 * routes, and failures worded as Fastify words them ("body/inputs/0 must have required property
 * 'name'"), so server.ts's failureReply turns them into the same messages.
 */

const ajv = new Ajv({ coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: false, addUsedSchema: false });

/** The error a failed check throws: Fastify's validation error shape (`validation` holds Ajv's errors). */
export class BodyValidationError extends Error {
  readonly statusCode = 400;
  constructor(readonly validation: ErrorObject[]) {
    // Fastify's defaultSchemaErrorFormatter, for dataVar 'body'.
    super(validation.map((e) => `body${e.instancePath || ''} ${e.message ?? ''}`).join(', '));
    this.name = 'BodyValidationError';
  }
}

/** A check of a request body against `schema`: throws BodyValidationError when it does not match. */
export function bodyValidator(schema: object): (body: unknown) => void {
  const validate = ajv.compile(schema);
  return (body) => {
    if (!validate(body)) throw new BodyValidationError(validate.errors ?? []);
  };
}
