/*
 * Headless Chromium for Kiln's pages, driven through playwright-core (a browser-automation library
 * that downloads no browser of its own): the system's Chromium (Debian's `chromium`, or $KILN_CHROMIUM,
 * or the path given), a fresh profile, no network beyond loopback. What the page logs and any error
 * it throws come back, so a failure in the page reaches the terminal.
 */
import { existsSync } from 'node:fs';
import { KilnError } from '../errors.js';
import type { Browser, BrowserContext, Page } from 'playwright-core';

/** Where Chromium is looked for when no path is given. */
export const DEFAULT_CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/**
 * Switches that keep a headless Chromium quiet on a machine with no GPU and no internet: without the
 * background-networking ones it keeps trying to reach Google's hosts.
 */
const FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** The Chromium to run: the given path, $KILN_CHROMIUM, or the first of DEFAULT_CHROMIUM present. */
export function findChromium(given?: string, env: NodeJS.ProcessEnv = process.env): string {
  const wanted = given ?? env.KILN_CHROMIUM;
  if (wanted) {
    if (!existsSync(wanted)) throw new KilnError('FILE_NOT_FOUND', `Chromium not found at ${wanted}`);
    return wanted;
  }
  const found = DEFAULT_CHROMIUM.find((p) => existsSync(p));
  if (!found) throw new KilnError('FILE_NOT_FOUND', `Chromium not found (looked for ${DEFAULT_CHROMIUM.join(', ')}): install it (apt-get install chromium) or set KILN_CHROMIUM`);
  return found;
}

export interface HeadlessPage {
  page: Page;
  context: BrowserContext;
  /** Console lines and uncaught page errors, in order ('error: ...' for the latter). */
  log: string[];
  close(): Promise<void>;
}

export interface OpenOptions {
  chromium?: string;
  /** Called with each console line as it comes (e.g. to print progress live). */
  onConsole?: (line: string) => void;
  /** Extra Chromium switches (tests turn features off with them). */
  args?: string[];
}

/** Opens `url` in a new headless Chromium; the caller closes it. */
export async function openHeadless(url: string, options: OpenOptions = {}): Promise<HeadlessPage> {
  const executablePath = findChromium(options.chromium);
  const { chromium } = await import('playwright-core');
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath, headless: true, args: [...FLAGS, ...(options.args ?? [])] });
  } catch (err) {
    throw new KilnError('RUNTIME_ERROR', `could not start Chromium (${executablePath}): ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  try {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    const log: string[] = [];
    page.on('console', (m) => {
      const line = m.type() === 'log' || m.type() === 'info' ? m.text() : `${m.type()}: ${m.text()}`;
      log.push(line);
      options.onConsole?.(line);
    });
    page.on('pageerror', (e) => {
      log.push(`error: ${e.message}`);
      options.onConsole?.(`error: ${e.message}`);
    });
    await page.goto(url);
    return { page, context, log, close: () => browser.close() };
  } catch (err) {
    await browser.close();
    throw err;
  }
}
