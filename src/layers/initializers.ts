import { KilnError } from '../errors.js';
import type { Random } from '../random.js';
import { Tensor } from '../tensor.js';

/** Weight initializers, as Keras names them; the random ones draw from the model's seed. */
export type InitializerName = 'glorotUniform' | 'glorotNormal' | 'heUniform' | 'heNormal' | 'zeros' | 'ones';

/** Every initializer name layers accept. */
export const INITIALIZERS: readonly InitializerName[] = ['glorotUniform', 'glorotNormal', 'heUniform', 'heNormal', 'zeros', 'ones'];

export function checkInitializer(name: unknown, where: string): InitializerName {
  if (typeof name === 'string' && (INITIALIZERS as readonly string[]).includes(name)) return name as InitializerName;
  throw new KilnError('INVALID_ARGUMENT', `${where}: unknown initializer ${JSON.stringify(name)}; expected one of ${INITIALIZERS.join(', ')}`);
}

/** Truncated normal as Keras draws it: resample values beyond two standard deviations. */
function truncatedNormal(rng: Random, std: number): number {
  for (;;) {
    const z = rng.normal();
    if (Math.abs(z) <= 2) return z * std;
  }
}

/**
 * Initial values with Keras' variance-scaling formulas. The truncated normals use Keras' correction
 * factor 0.8796 so the resulting variance matches the untruncated target.
 */
export function initialValues(name: InitializerName, shape: number[], fans: [number, number], rng: Random): Tensor<'float32'> {
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  const [fanIn, fanOut] = fans;
  switch (name) {
    case 'zeros':
      break;
    case 'ones':
      data.fill(1);
      break;
    case 'glorotUniform': {
      const limit = Math.sqrt(6 / (fanIn + fanOut));
      for (let i = 0; i < size; i++) data[i] = rng.uniform(-limit, limit);
      break;
    }
    case 'heUniform': {
      const limit = Math.sqrt(6 / fanIn);
      for (let i = 0; i < size; i++) data[i] = rng.uniform(-limit, limit);
      break;
    }
    case 'glorotNormal': {
      const std = Math.sqrt(2 / (fanIn + fanOut)) / 0.87962566103423978;
      for (let i = 0; i < size; i++) data[i] = truncatedNormal(rng, std);
      break;
    }
    case 'heNormal': {
      const std = Math.sqrt(2 / fanIn) / 0.87962566103423978;
      for (let i = 0; i < size; i++) data[i] = truncatedNormal(rng, std);
      break;
    }
  }
  return new Tensor(data, shape, 'float32');
}
