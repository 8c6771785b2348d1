/**
 * Kiln's version, as package.json states it (test/version.test.ts keeps the two equal): written into
 * every saved model's producer_version and answered by the server's metadata endpoints. A constant
 * rather than a read of package.json, because the browser entry has no file system.
 */
export const KILN_VERSION = '0.1.0';
