/** Kiln's version, as package.json gives it (test/version.test.ts keeps the two equal). */
export const KILN_VERSION = '0.1.0';
