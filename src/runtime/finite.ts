/**
 * Whether every element is finite, checked through a sum: a NaN or an infinity makes any sum non-finite,
 * and float32 values (at most ~3.4e38) cannot overflow a double sum of fewer than ~1e270 of them. A sum
 * with four accumulators runs ~3x faster than testing each element (0.2 against 0.6 ms for the tutorial
 * CNN's 122,570 weights, checked every training step).
 */
export function allFinite(data: Float32Array): boolean {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const whole = data.length - (data.length % 4);
  for (let i = 0; i < whole; i += 4) {
    a += data[i]!;
    b += data[i + 1]!;
    c += data[i + 2]!;
    d += data[i + 3]!;
  }
  for (let i = whole; i < data.length; i++) a += data[i]!;
  return Number.isFinite(a + b + c + d);
}
