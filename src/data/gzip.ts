// Owns telling a gzip stream by its first bytes; no file access, so a browser page uses it too.

/** Every gzip stream starts with these two bytes (RFC 1952), whatever the file is called. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}
