import type { TestContext } from 'node:test';
import { kilnFolders } from '../../src/browser/assets.js';
import { findChromium, openHeadless, type HeadlessPage, type OpenOptions } from '../../src/browser/chromium.js';
import { startStaticServer, type StaticServer, type StaticServerOptions } from '../../src/browser/static-server.js';
import { needs } from '../requirements.js';

/* A loopback server with the browser bundle under /kiln/ and a blank page, and headless Chromium on it. */

/** Why the browser tests cannot run here, or undefined: Chromium is needed (CI installs it, .ci/run). */
export function missingChromium(): string | undefined {
  try {
    findChromium();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

export interface BrowserSession {
  server: StaticServer;
  browser: HeadlessPage;
  close(): Promise<void>;
}

/** Opens a blank page served with (or, isolated: false, without) cross-origin isolation. */
export async function openBlankPage(options: Pick<StaticServerOptions, 'isolated' | 'pages' | 'folders'> & OpenOptions = {}): Promise<BrowserSession> {
  const server = await startStaticServer({
    folders: [...kilnFolders(), ...(options.folders ?? [])],
    pages: { '/': { body: '<!doctype html><meta charset="utf-8"><title>kiln test</title>', type: 'text/html; charset=utf-8' }, ...options.pages },
    isolated: options.isolated,
  });
  try {
    const browser = await openHeadless(`${server.url}/`, options);
    return { server, browser, close: async () => void (await browser.close(), await server.close()) };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** Skips (or under CI fails) a test when Chromium is missing; returns whether to go on. */
export function needsChromium(t: TestContext): boolean {
  return needs(t, missingChromium());
}
