import { KilnError } from '../errors.js';
import { Tensor } from '../tensor.js';

/** Per-channel mean and (population) standard deviation of channel-last data. */
export interface ChannelStatistics {
  /** Mean of each channel. */
  mean: number[];
  /** Standard deviation of each channel. */
  std: number[];
}

function channelCount(values: Tensor<'float32'>, caller: string): number {
  const channels = values.shape[values.rank - 1];
  if (values.rank < 2 || channels === undefined || channels === 0) {
    throw new KilnError('INVALID_SHAPE', `${caller}: expected channel-last data such as [N, H, W, C], found rank ${values.rank}`);
  }
  return channels;
}

/**
 * Mean and standard deviation of each channel (the last axis) over all other axes. Compute them on
 * the training set only and apply them to every split, so validation never leaks into training.
 */
export function channelStatistics(values: Tensor<'float32'>): ChannelStatistics {
  const channels = channelCount(values, 'channelStatistics');
  const data = values.data;
  const perChannel = data.length / channels;
  const mean = new Array<number>(channels).fill(0);
  const variance = new Array<number>(channels).fill(0);
  for (let i = 0; i < data.length; i++) mean[i % channels]! += data[i]!;
  for (let c = 0; c < channels; c++) mean[c] = mean[c]! / perChannel;
  for (let i = 0; i < data.length; i++) {
    const d = data[i]! - mean[i % channels]!;
    variance[i % channels]! += d * d;
  }
  return { mean, std: variance.map((v) => Math.sqrt(v / perChannel)) };
}

/** (x - mean) / std per channel; a channel with zero spread is only centred, not divided by zero. */
export function normalize(values: Tensor<'float32'>, statistics: ChannelStatistics = channelStatistics(values)): Tensor<'float32'> {
  const channels = channelCount(values, 'normalize');
  if (statistics.mean.length !== channels || statistics.std.length !== channels) {
    throw new KilnError(
      'INVALID_ARGUMENT',
      `normalize: expected ${channels} means and standard deviations, found ${statistics.mean.length} and ${statistics.std.length}`,
    );
  }
  const scale = statistics.std.map((s) => (s > 0 ? 1 / s : 1));
  const data = values.data;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const c = i % channels;
    out[i] = (data[i]! - statistics.mean[c]!) * scale[c]!;
  }
  return new Tensor(out, values.shape, 'float32');
}

/** uint8 pixels to float32 in [0, 1]. */
export function scaleToUnit(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i]! / 255;
  return out;
}
