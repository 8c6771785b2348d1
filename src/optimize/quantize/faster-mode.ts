import type { Comparison } from './evaluate.js';
import { quantize, type QuantizationMode, type QuantizationReport, type QuantizeOptions } from './quantize.js';
import type { QuantizableModel } from './source-graph.js';

/*
 * When a quantized model runs slower than its float original on this CPU — dynamic int8 on a CNN
 * (ConvInteger has no fused kernel: 0.13× float's speed on an AVX-512 VNNI CPU, where static int8 ran
 * 1.7–1.9× faster), static int8 on a transformer too small for its conversions to pay off — which mode
 * to use instead. Measured, not guessed: the other int8 mode is quantized and timed against float the
 * same way, and the advice quotes both measurements.
 */

/** A quantized model counts as slower below this fraction of float's speed (timing noise is a few percent). */
export const SLOWER_BELOW = 0.95;

const LABEL: Record<QuantizationMode, string> = { static: 'static int8', dynamic: 'dynamic int8', float16: 'float16', qat: 'QAT int8' };

/** float32's time / the quantized model's time, at the measured batch size. */
export function speedup(c: Comparison): number {
  return c.before.latencyMs / c.after.latencyMs;
}

/** One quantization mode's measured result: its evaluation against float and its compression. */
export interface ModeOutcome {
  /** The quantization mode. */
  mode: QuantizationMode;
  /** The float model against the model quantized in this mode. */
  comparison: Comparison;
  /** The quantized file's size, float's / its. */
  compression: number;
}

/** The int8 mode to try when this one is slow: static for dynamic (a CNN's convolutions), dynamic for static. */
export function alternativeMode(mode: QuantizationMode): QuantizationMode | undefined {
  return mode === 'dynamic' ? 'static' : mode === 'static' || mode === 'qat' ? 'dynamic' : undefined;
}

/**
 * The advice for a mode that measured slower than float (undefined when it did not): the alternative
 * mode when that one measured faster than float, else float32 itself for speed.
 */
export function fasterModeAdvice(chosen: ModeOutcome, alternative?: ModeOutcome): string | undefined {
  const s = speedup(chosen.comparison);
  if (s >= SLOWER_BELOW) return undefined;
  const here = `${LABEL[chosen.mode]} runs at ${s.toFixed(2)}× float32's speed on this CPU (batch ${chosen.comparison.batchSize})`;
  if (alternative) {
    const a = speedup(alternative.comparison);
    const before = alternative.comparison.before.accuracy;
    const after = alternative.comparison.after.accuracy;
    const accuracy = before !== undefined && after !== undefined ? `, ${after >= before ? '+' : ''}${(100 * (after - before)).toFixed(2)} points of accuracy` : '';
    const measured = `${LABEL[alternative.mode]} measured ${a.toFixed(2)}× just now${accuracy}, ${alternative.compression.toFixed(2)}× smaller`;
    if (a >= 1) return `${here}; ${measured}: use --mode ${alternative.mode} for speed.`;
    return `${here}; ${measured}: neither int8 mode is faster than float32 here, so keep the float32 model for speed (int8 buys size: ${chosen.compression.toFixed(2)}× smaller).`;
  }
  return `${here}: keep the float32 model for speed (this mode buys size: ${chosen.compression.toFixed(2)}× smaller).`;
}

/**
 * For a quantized model whose evaluation measured it slower than float: quantizes the same model in the
 * other int8 mode (static needs `options.calibration`), measures it on the same evaluation data, and
 * returns the advice with that outcome. Undefined when the model was not evaluated or is not slower.
 */
export async function suggestFasterMode(model: QuantizableModel, report: QuantizationReport, options: QuantizeOptions): Promise<
  | {
      /** The advice, in words (fasterModeAdvice). */
      advice: string;
      /** The other mode's measured outcome, when it was tried. */
      alternative?: ModeOutcome;
    }
  | undefined
> {
  const comparison = report.evaluation;
  if (!comparison || speedup(comparison) >= SLOWER_BELOW) return undefined;
  const chosen: ModeOutcome = { mode: report.mode, comparison, compression: report.compression };
  const mode = alternativeMode(report.mode);
  let alternative: ModeOutcome | undefined;
  if (mode && (mode !== 'static' || options.calibration !== undefined)) {
    const { fineTune: _fineTune, ...rest } = options;
    const other = await quantize(model, { ...rest, mode });
    if (other.report.evaluation) alternative = { mode, comparison: other.report.evaluation, compression: other.report.compression };
  }
  return { advice: fasterModeAdvice(chosen, alternative)!, ...(alternative ? { alternative } : {}) };
}
