import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KilnError } from '../../src/errors.js';
import { formatBytes, formatDuration, formatNumber, formatTable } from '../../src/text/format.js';
import { ProgressBar, type ProgressStream } from '../../src/text/progress.js';
import { progressOutput } from '../../src/text/progress-output.js';
import { PassThrough } from 'node:stream';

describe('formatTable', () => {
  it('draws a Keras-style model summary: header, rule, padded columns, numbers right-aligned', () => {
    const table = formatTable(
      [
        ['conv2d (Conv2D)', '[null, 30, 30, 32]', 896],
        ['dense_1 (Dense)', '[null, 10]', 650],
        ['flatten (Flatten)', '[null, 1024]', 0],
        ['total', '', 122570],
      ],
      { header: ['Layer (type)', 'Output Shape', 'Param #'] },
    );
    // widths 17, 18, 7 (the header 'Param #' is wider than '122,570'); gap 2 → 17 + 2 + 18 + 2 + 7 = 46
    assert.equal(
      table,
      [
        'Layer (type)       Output Shape        Param #',
        '----------------------------------------------',
        'conv2d (Conv2D)    [null, 30, 30, 32]      896',
        'dense_1 (Dense)    [null, 10]              650',
        'flatten (Flatten)  [null, 1024]              0',
        'total                                  122,570',
      ].join('\n'),
    );
  });

  it('honours explicit alignment, gap and rule character', () => {
    const table = formatTable(
      [
        ['a', 'x'],
        ['bbb', 'yy'],
      ],
      { header: ['k', 'v'], align: ['right', 'left'], gap: 1, rule: '=' },
    );
    assert.equal(table, ['  k v', '======', '  a x', 'bbb yy'].join('\n'));
  });

  it('renders a confusion matrix with every numeric column right-aligned', () => {
    const table = formatTable(
      [
        ['cat', 1200, 3],
        ['dog', 7, 45],
      ],
      { header: ['true \\ pred', 'cat', 'dog'] },
    );
    const lines = table.split('\n');
    assert.equal(lines[0], 'true \\ pred    cat  dog');
    assert.equal(lines[2], 'cat          1,200    3');
    assert.equal(lines[3], 'dog              7   45');
    // Column widths: 11, 5 ('1,200'), 3 → every line ends at the same column when the last is right-aligned.
    assert.equal(lines[2]!.length, lines[3]!.length);
    assert.equal(lines[1], '-'.repeat(11 + 2 + 5 + 2 + 3));
  });

  it('pads short rows, keeps lines free of trailing spaces and counts code points for width', () => {
    const table = formatTable([['µs'], ['×', 'x']], { header: ['unit', 'note'] });
    assert.equal(table, ['unit  note', '----------', 'µs', '×     x'].join('\n'));
  });

  it('rejects rows wider than the header and a mismatched align list', () => {
    assert.throws(
      () => formatTable([['a', 'b', 'c']], { header: ['one', 'two'] }),
      (err: unknown) => err instanceof KilnError && err.code === 'INVALID_ARGUMENT' && /row 0 has 3 cells but the header has 2/.test(err.message),
    );
    assert.throws(() => formatTable([], { header: ['one'], align: ['left', 'right'] }), KilnError);
  });
});

describe('number, size and duration formatting', () => {
  it('formatNumber groups thousands in the integer part only', () => {
    assert.equal(formatNumber(122570), '122,570');
    assert.equal(formatNumber(999), '999');
    assert.equal(formatNumber(1000), '1,000');
    assert.equal(formatNumber(-1234567), '-1,234,567');
    assert.equal(formatNumber(1234.5678), '1,234.5678');
    assert.equal(formatNumber(1234.5678, { fractionDigits: 2 }), '1,234.57');
    assert.equal(formatNumber(0.00012345), '0.00012345');
    assert.equal(formatNumber(1e-7), '1e-7');
    assert.equal(formatNumber(NaN), 'NaN');
  });

  it('formatBytes uses binary units', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1,023 B');
    assert.equal(formatBytes(1024), '1.00 KiB');
    assert.equal(formatBytes(490280), '478.79 KiB'); // 122,570 float32 params
    assert.equal(formatBytes(1572864), '1.50 MiB');
    assert.equal(formatBytes(3 * 1024 ** 3), '3.00 GiB');
  });

  it('formatDuration drops precision as durations grow', () => {
    assert.equal(formatDuration(0), '0ms');
    assert.equal(formatDuration(850.4), '850ms');
    assert.equal(formatDuration(3000), '3s');
    assert.equal(formatDuration(3240), '3.2s');
    assert.equal(formatDuration(42_400), '42s');
    assert.equal(formatDuration(125_000), '2m 05s');
    assert.equal(formatDuration(3_725_000), '1h 02m');
    assert.equal(formatDuration(Infinity), '--');
  });
});

class FakeStream implements ProgressStream {
  readonly writes: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {}
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
}

function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('ProgressBar', () => {
  it('on a TTY redraws one line in place with values, throughput and ETA', () => {
    const stream = new FakeStream(true);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 50, stream, label: 'Epoch 1/3', itemsPerStep: 32, itemUnit: 'img', now: clock.now });
    clock.advance(1200);
    bar.update(12, { loss: 0.43214, accuracy: 0.88123 });
    // 12 steps · 32 img in 1.2 s = 320 img/s; ETA = 1.2 s / 12 · 38 = 3.8 s → rounded up to 4s
    // bar: floor(30 · 12/50) = 7 cells: six '=' and the '>' head, then 23 dots
    assert.deepEqual(stream.writes, [
      '\r\x1b[2KEpoch 1/3 12/50 [======>.......................] - loss: 0.4321 - accuracy: 0.8812 - 320 img/s - ETA 4s',
    ]);
  });

  it('on a TTY redraws at most every 100 ms', () => {
    const stream = new FakeStream(true);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 100, stream, now: clock.now });
    clock.advance(10);
    bar.update(1, { loss: 1 });
    clock.advance(50);
    bar.update(2, { loss: 0.9 }); // 50 ms after the last draw: skipped
    clock.advance(50);
    bar.update(3, { loss: 0.8 }); // 100 ms after: drawn
    assert.equal(stream.writes.length, 2);
    assert.match(stream.writes[1]!, /^\r\x1b\[2K  3\/100 \[/);
    assert.match(stream.writes[1]!, /loss: 0\.8000/);
  });

  it('on a TTY ends with the full bar, the total time and a newline', () => {
    const stream = new FakeStream(true);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 4, stream, width: 10, now: clock.now });
    clock.advance(400);
    bar.update(2, { loss: 0.5 });
    clock.advance(400);
    bar.finish({ loss: 0.25 });
    bar.finish({ loss: 0.1 }); // a second finish is ignored
    // 800 ms over 4 steps → 200ms/step
    assert.equal(stream.writes.at(-1), '\r\x1b[2K4/4 [==========] - loss: 0.2500 - 200ms/step - 800ms\n');
    assert.equal(stream.writes.length, 2);
  });

  it('cuts a TTY line to the terminal width so the redraw does not wrap', () => {
    const stream = new FakeStream(true, 20);
    const bar = new ProgressBar({ total: 10, stream, now: fakeClock().now });
    bar.update(5, { loss: 0.5 });
    // 19 columns (one left free so the cursor never wraps): ' 5/10 [' and the first 12 bar cells
    assert.equal(stream.writes[0], '\r\x1b[2K' + ' 5/10 [' + '='.repeat(12));
  });

  it('when not a TTY prints nothing on update and exactly one line on finish', () => {
    const stream = new FakeStream(false);
    const clock = fakeClock();
    const bar = new ProgressBar({ total: 3, stream, label: 'Epoch 2/2', now: clock.now });
    for (let step = 1; step <= 3; step++) {
      clock.advance(1000);
      bar.update(step, { loss: 1 / step });
    }
    assert.deepEqual(stream.writes, []);
    bar.finish(); // falls back to the last update's values
    assert.deepEqual(stream.writes, ['Epoch 2/2 3/3 [==============================] - loss: 0.3333 - 1s/step - 3s\n']);
  });

  it('formats tiny values in scientific notation and passes strings through', () => {
    const stream = new FakeStream(false);
    const bar = new ProgressBar({ total: 1, stream, now: fakeClock().now });
    bar.finish({ lr: 0.00001, phase: 'warmup', loss: 0 });
    assert.match(stream.writes[0]!, / - lr: 1\.0000e-5 - phase: warmup - loss: 0\.0000/);
  });

  it('rejects a total that is not a non-negative integer', () => {
    assert.throws(() => new ProgressBar({ total: -1, stream: new FakeStream(false) }), KilnError);
    assert.throws(() => new ProgressBar({ total: 2.5, stream: new FakeStream(false) }), KilnError);
  });
});

describe('progressOutput', () => {
  it('hands a terminal the live bar itself, and anything else whole lines through the output function', async () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true }) as unknown as NodeJS.WriteStream;
    assert.equal(progressOutput(() => undefined, terminal), terminal);
    const lines: string[] = [];
    const piped = progressOutput((l) => lines.push(l), Object.assign(new PassThrough(), { isTTY: false }) as unknown as NodeJS.WriteStream);
    const bar = new ProgressBar({ total: 2, stream: { write: (t: string) => piped.write(t), isTTY: false }, label: 'Epoch 1/1' });
    bar.update(1, { loss: 0.5 });
    piped.write('partial ');
    piped.write('line\n\n');
    bar.finish({ loss: 0.25 });
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(lines.length, 2, JSON.stringify(lines));
    assert.equal(lines[0], 'partial line');
    assert.match(lines[1]!, /^Epoch 1\/1 2\/2 .*loss: 0\.2500/);
  });
});
