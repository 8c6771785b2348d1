/**
 * The compressions `kiln optimize` searches over, as a tree of stages: first a narrower model
 * (structured pruning at a ratio, or distillation into a student with a fraction of the parameters),
 * then unstructured sparsity, then a quantization mode. Each stage's model is made once and shared
 * by every candidate below it, so the search fine-tunes (number of narrow models + their sparse
 * versions) times, not once per candidate. Also the order candidates are tried in for an objective.
 */
/** The first stage of a candidate: none, structured pruning of a fraction of channels, or a distilled student with a fraction of the parameters. */
export type Shrink =
  | {
      /** No shrink stage: the model keeps its width. */
      method: 'none';
    }
  | {
      /** Structured pruning. */
      method: 'prune';
      /** Fraction of each pruned layer's filters or units removed. */
      ratio: number;
    }
  | {
      /** Distillation into a smaller student. */
      method: 'distill';
      /** The student's parameters as a fraction of the teacher's. */
      ratio: number;
    };
/** The quantization stage of a candidate: none, float16, or static int8. */
export type QuantizationChoice = 'none' | 'float16' | 'int8';

/** One candidate of the search: a shrink stage, a sparsity, and a quantization mode. */
export interface CompressionConfig {
  /** How the model is first made narrower (or not). */
  shrink: Shrink;
  /** Fraction of each pruned kernel's weights set to zero (0: none). */
  sparsity: number;
  /** The quantization mode applied last. */
  quantization: QuantizationChoice;
}

/** Which pruning ratios, student sizes, sparsities and quantization modes the search tries. */
export interface SearchChoices {
  /** Structured pruning ratios (default 0.25, 0.5, 0.75). */
  pruneRatios?: number[];
  /** Students with these fractions of the teacher's parameters (default 0.5, 0.25). */
  studentRatios?: number[];
  /** Unstructured sparsities (default 0.5, 0.8). */
  sparsities?: number[];
  /** Quantization modes besides none (default float16 and int8: static, calibrated). */
  quantizations?: Exclude<QuantizationChoice, 'none'>[];
}

const percent = (r: number) => String(Math.round(r * 100));

/** A shrink stage's name: float, pruned50, student25, ... */
export function shrinkName(s: Shrink): string {
  return s.method === 'none' ? 'float' : `${s.method === 'prune' ? 'pruned' : 'student'}${percent(s.ratio)}`;
}

/** A file-friendly name: float, pruned50, student25-sparse80-int8, ... */
export function configName(c: CompressionConfig): string {
  return [shrinkName(c.shrink), ...(c.sparsity > 0 ? [`sparse${percent(c.sparsity)}`] : []), ...(c.quantization === 'none' ? [] : [c.quantization === 'int8' ? 'int8' : 'fp16'])].join('-');
}

/** Every candidate of the search (the uncompressed model excluded). */
export function allConfigs(choices: SearchChoices = {}): CompressionConfig[] {
  const shrinks: Shrink[] = [{ method: 'none' }, ...(choices.pruneRatios ?? [0.25, 0.5, 0.75]).map((ratio) => ({ method: 'prune' as const, ratio })), ...(choices.studentRatios ?? [0.5, 0.25]).map((ratio) => ({ method: 'distill' as const, ratio }))];
  const sparsities = [0, ...(choices.sparsities ?? [0.5, 0.8])];
  const quantizations: QuantizationChoice[] = ['none', ...(choices.quantizations ?? ['float16', 'int8'])];
  const configs: CompressionConfig[] = [];
  for (const shrink of shrinks) for (const sparsity of sparsities) for (const quantization of quantizations) if (shrink.method !== 'none' || sparsity > 0 || quantization !== 'none') configs.push({ shrink, sparsity, quantization });
  return configs;
}

/** How much a shrink stage removes (0 for none), to try the cheap and the promising first. */
const shrinkStrength = (s: Shrink) => (s.method === 'none' ? 0 : s.method === 'prune' ? s.ratio : 1 - s.ratio);

/**
 * The order to try candidates in: those that need no fine-tuning beyond their stage first, then by
 * how much they may buy for the objective. Unstructured sparsity buys no speed in ONNX Runtime (no
 * sparse kernels), so for latency it comes last; for size it ranks with the rest.
 */
export function searchOrder(configs: CompressionConfig[], objective: 'latency' | 'size'): CompressionConfig[] {
  const key = (c: CompressionConfig): number[] => [
    objective === 'latency' ? (c.sparsity > 0 ? 1 : 0) : 0,
    c.shrink.method === 'distill' ? 1 : 0, // distillation trains a student from scratch: the dearest stage
    shrinkStrength(c.shrink),
    c.sparsity,
    c.quantization === 'int8' ? 0 : c.quantization === 'float16' ? 1 : 2,
  ];
  return [...configs].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! - kb[i]!;
    return 0;
  });
}
