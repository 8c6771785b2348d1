import { KilnError } from '../errors.js';
import { FETCHABLE_DATASETS, defaultDatasetDir, fetchDataset, isFetchableDataset, unknownDatasetError, type FetchProgress } from '../data/fetch.js';
import { stringOption } from './args.js';
import type { Command } from './command.js';
import { formatBytes } from '../text/format.js';
import { ProgressBar } from '../text/progress.js';

const KIB = 1024;
const MIB = 1024 * 1024;

/** One bar per file, counted in KiB or MiB so the counter and the rate read as sizes. */
class DownloadBars {
  private bar: ProgressBar | undefined;
  private file: string | undefined;
  private step = KIB;

  constructor(private readonly out: (line: string) => void) {}

  onProgress = (event: FetchProgress): void => {
    if (event.phase === 'download') {
      if (this.file !== event.file) this.start(event);
      this.bar?.update(Math.floor(event.receivedBytes / this.step));
      return;
    }
    this.end();
    if (event.phase === 'verified') {
      const state = event.cached ? 'already present, verified' : 'verified';
      this.out(`${event.file}: ${state} (${formatBytes(event.bytes)}, SHA-256 ${event.sha256})`);
    } else {
      this.out(`${event.file}: ${event.cached ? 'already unpacked in' : 'unpacked into'} ${event.dir}`);
    }
  };

  private start(event: Extract<FetchProgress, { phase: 'download' }>): void {
    this.end();
    this.file = event.file;
    if (event.resumedFrom > 0) {
      const of = event.totalBytes === undefined ? '' : ` of ${formatBytes(event.totalBytes)}`;
      this.out(`${event.file}: resuming at ${formatBytes(event.resumedFrom)}${of}`);
    }
    if (event.totalBytes === undefined) return;
    this.step = event.totalBytes >= MIB ? MIB : KIB;
    this.bar = new ProgressBar({
      total: Math.ceil(event.totalBytes / this.step),
      label: event.file,
      itemUnit: this.step === MIB ? 'MiB' : 'KiB',
    });
  }

  /** Completes the bar of the file in progress; after a failure, moves the terminal past it. */
  end(failed = false): void {
    if (failed && this.bar && process.stderr.isTTY) process.stderr.write('\n');
    else this.bar?.finish();
    this.bar = undefined;
    this.file = undefined;
  }
}

export const dataCommand: Command = {
  name: 'data',
  summary: 'Download a data set (cifar10, mnist, fashion-mnist) and check its published checksums',
  usage: `kiln data fetch <${FETCHABLE_DATASETS.join('|')}> [--dir DIR] [--base-url URL]`,
  options: [
    { name: 'dir', type: 'string', description: 'directory for the files (default: $KILN_DATA_DIR/<name>, else ~/.cache/kiln/datasets/<name>)' },
    { name: 'base-url', type: 'string', description: 'a mirror folder holding the same file names, instead of the canonical address' },
  ],
  async run({ positionals, options }, out) {
    const [action, name, ...extra] = positionals;
    if (action !== 'fetch') {
      throw new KilnError('INVALID_ARGUMENT', `kiln data: expected the action 'fetch', found ${action === undefined ? 'none' : `'${action}'`} (usage: ${dataCommand.usage})`);
    }
    if (name === undefined || extra.length > 0) {
      throw new KilnError('INVALID_ARGUMENT', `kiln data fetch: expected one data set name (${FETCHABLE_DATASETS.join(', ')}), found ${name === undefined ? 'none' : [name, ...extra].join(' ')}`);
    }
    if (!isFetchableDataset(name)) throw unknownDatasetError(name);
    const dir = options.dir === undefined ? defaultDatasetDir(name) : String(options.dir);
    const bars = new DownloadBars(out);
    out(`Fetching ${name} into ${dir}`);
    let result;
    try {
      result = await fetchDataset(name, { dir, baseUrl: stringOption(options, 'base-url'), onProgress: bars.onProgress });
    } catch (error) {
      bars.end(true);
      throw error;
    }
    const fetched = result.downloaded.length;
    out(`Done: ${result.files.length} file${result.files.length === 1 ? '' : 's'} in ${result.dir} (${fetched} downloaded, ${result.files.length - fetched} already present)`);
    out(`Train with: kiln train --dataset ${result.datasetSpec}`);
    return 0;
  },
};
