import { pollRuntimes } from '../runtime/runtime.js';

/*
 * Collecting ONNX Runtime's finished results under a flood of requests. The event loop gets to the
 * worker threads' replies only after every ready socket, a few times a second under a flood; so past
 * the 64th request within one turn of the loop, each arriving request (HTTP or gRPC) first collects
 * them. (Polling on every request made batches smaller at ordinary load: 10-20% fewer requests/s at
 * 64 connections; every 64th request was too rare under a flood.)
 */

let arrivalsThisTurn = 0;
const newTurn = (): void => {
  arrivalsThisTurn = 0;
};

/** Called as each inference request arrives, before it is parsed. */
export function requestArrived(): void {
  if (arrivalsThisTurn++ === 0) setImmediate(newTurn);
  else if (arrivalsThisTurn > 64) pollRuntimes();
}
