import { KilnError } from '../errors.js';
import type { Graph, Value } from '../graph/graph.js';

/**
 * Activation functions a layer can apply ('leaky_relu' and 'leakyrelu' are accepted for 'leakyRelu'; its slope is 0.2).
 */
export type ActivationName = 'relu' | 'sigmoid' | 'tanh' | 'softmax' | 'linear' | 'leakyRelu';

/** Every activation name layers accept. */
export const ACTIVATIONS: readonly ActivationName[] = ['relu', 'sigmoid', 'tanh', 'softmax', 'linear', 'leakyRelu'];

/** Keras also spells some activations in snake_case; both are accepted. */
const ALIASES: Record<string, ActivationName> = { leaky_relu: 'leakyRelu', leakyrelu: 'leakyRelu' };

export function checkActivation(name: unknown, where: string): ActivationName {
  if (name === undefined || name === null) return 'linear';
  if (typeof name === 'string') {
    if ((ACTIVATIONS as readonly string[]).includes(name)) return name as ActivationName;
    if (ALIASES[name]) return ALIASES[name]!;
  }
  throw new KilnError('UNKNOWN_ACTIVATION', `${where}: unknown activation ${JSON.stringify(name)}; expected one of ${ACTIVATIONS.join(', ')}`);
}

/** Slope for negative inputs of leakyRelu (TF.js' default). */
export const LEAKY_RELU_ALPHA = 0.2;

/** Emits an activation; `axis` is where softmax normalizes (the channel axis). */
export function applyActivation(graph: Graph, x: Value, activation: ActivationName, axis = 1): Value {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return graph.op1('Relu', [x]);
    case 'sigmoid':
      return graph.op1('Sigmoid', [x]);
    case 'tanh':
      return graph.op1('Tanh', [x]);
    case 'leakyRelu':
      return graph.op1('LeakyRelu', [x], { alpha: LEAKY_RELU_ALPHA });
    case 'softmax':
      return graph.op1('Softmax', [x], { axis });
  }
}
