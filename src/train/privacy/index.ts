/**
 * Differential privacy for training: the RDP accountant of the sampled Gaussian mechanism (ε spent,
 * noise for a target ε). DP-SGD itself is an option of `fit` (`privacy`).
 */
export { computeRdp, epsilonFromRdp, noiseMultiplierFor, RdpAccountant, DEFAULT_RDP_ORDERS } from './rdp-accountant.js';
export type { ComputeRdpArgs, EpsilonFromRdpArgs, NoiseMultiplierForArgs } from './rdp-accountant.js';
