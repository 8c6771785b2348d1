#!/usr/bin/env node
import { main } from './main.js';

// A reader that closes the pipe early (`kiln info m.onnx | head -3`) has read all it wants: what is
// left to print goes nowhere, quietly, and the command still finishes its work (`kiln train … | head`
// still saves the model), instead of dying on an unhandled EPIPE with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err;
  process.stdout.write = (() => true) as typeof process.stdout.write;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
    process.exitCode = 1;
  },
);
