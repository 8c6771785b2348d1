// Owns the sync between a model's named weights and the runtime worker's training state: the flat
// parameter vector the compiled step trains, the optimizer's flat slots, frozen weights (BatchNorm
// statistics) and the pruning mask. While fit() runs the worker holds the live values; these
// functions copy them in and out.
import type { Runtime } from '../runtime/runtime.js';
import { Tensor } from '../tensor.js';
import type { CompiledSteps } from './compiled-steps.js';
import { MASK_STATE, STATE_PARAMS, slotState } from './training-step.js';

/** Optimizer state carried across fit() calls, as Keras keeps it: flat slots and the step count. */
export interface OptimizerProgress {
  slots: Map<string, Tensor<'float32'>>;
  step: number;
}

/** Sends the weights and optimizer slots (the given ones; fresh ones where none is given) into the worker's state. */
export async function pushState(
  runtime: Runtime,
  c: CompiledSteps,
  weights: Map<string, Tensor>,
  slots: Map<string, Tensor<'float32'>> | undefined,
  mask: Float32Array | undefined,
): Promise<void> {
  const flat = new Float32Array(c.training.totalSize);
  for (const l of c.training.layout) flat.set(weights.get(l.name)!.data as Float32Array, l.offset);
  const state: Record<string, Tensor> = { [STATE_PARAMS]: new Tensor(flat, [flat.length], 'float32') };
  for (const s of c.optimizer.slots) {
    const given = slots?.get(s.name);
    state[slotState(s.name)] = given ?? new Tensor(new Float32Array(c.training.totalSize).fill(s.initial), [c.training.totalSize], 'float32');
  }
  for (const name of c.training.frozen) state[name] = weights.get(name)!;
  if (mask) state[MASK_STATE] = new Tensor(mask, [mask.length], 'float32');
  await runtime.setState(state, c.stateScope);
  await c.replicas?.setState(state);
}

/** The trained weights in the worker, by name, and (withSlots) the optimizer's slots; empty slots otherwise. */
export async function pullState(runtime: Runtime, c: CompiledSteps, withSlots: boolean): Promise<{ weights: Map<string, Tensor>; slots: Map<string, Tensor<'float32'>> }> {
  const names = [STATE_PARAMS, ...c.training.frozen, ...(withSlots ? c.optimizer.slots.map((s) => slotState(s.name)) : [])];
  const state = await runtime.getState(names, c.stateScope);
  const flat = state[STATE_PARAMS]!.data as Float32Array;
  const weights = new Map<string, Tensor>();
  for (const l of c.training.layout) weights.set(l.name, new Tensor(flat.slice(l.offset, l.offset + l.size), l.shape, 'float32'));
  for (const name of c.training.frozen) weights.set(name, state[name]!);
  const slots = new Map<string, Tensor<'float32'>>();
  for (const s of c.optimizer.slots) if (withSlots) slots.set(s.name, state[slotState(s.name)] as Tensor<'float32'>);
  return { weights, slots };
}

/** Applies a new pruning mask to the live weights in the worker at once, not only after the next update. */
export async function maskLiveWeights(runtime: Runtime, c: CompiledSteps, mask: Float32Array): Promise<void> {
  const state = await runtime.getState([STATE_PARAMS], c.stateScope);
  const flat = state[STATE_PARAMS]!.data as Float32Array;
  for (let i = 0; i < flat.length; i++) flat[i] = flat[i]! * mask[i]!;
  await runtime.setState({ [MASK_STATE]: new Tensor(mask, [mask.length], 'float32'), [STATE_PARAMS]: new Tensor(flat, [flat.length], 'float32') }, c.stateScope);
}
