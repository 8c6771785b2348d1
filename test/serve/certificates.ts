/*
 * X.509 certificates made at test time, in Node alone: a CA, and server and client certificates it
 * signs (EC P-256, ECDSA with SHA-256, valid from an hour ago for a day). Node can sign but has no
 * certificate builder, and the openssl CLI is not on every machine the tests run on; so the few DER
 * structures a certificate needs (RFC 5280) are written here. Node's X509Certificate reads each one
 * back and checks its signature, so a mistake here fails loudly, not as a puzzling TLS error.
 */
import { createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, content]);
}

const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, item: Buffer) => tlv(0xa0 + n, item);
const octets = (b: Buffer) => tlv(0x04, b);
const bits = (b: Buffer, unused = 0) => tlv(0x03, Buffer.concat([Buffer.from([unused]), b]));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));

function integer(b: Buffer): Buffer {
  // DER integers are signed: a leading 1 bit needs a zero byte before it.
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

function utcTime(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  return tlv(0x17, Buffer.from(`${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`, 'ascii'));
}

const name = (commonName: string) => seq(set(seq(oid('2.5.4.3'), utf8(commonName))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

export interface Issued {
  /** The certificate, PEM. */
  cert: string;
  /** Its private key, PEM (PKCS#8). */
  key: string;
  keyObject: KeyObject;
  commonName: string;
}

interface Options {
  /** Signed by this CA (default: self-signed). */
  issuer?: Issued;
  ca?: boolean;
  /** Host names and IP addresses the certificate is for (servers). */
  altNames?: string[];
  /** What the key may be used for: TLS server, TLS client. */
  usage?: ('server' | 'client')[];
}

function certificate(commonName: string, options: Options): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const now = Date.now();
  // Positive and without a leading zero byte: DER refuses an INTEGER padded with one (a first byte of
  // 0x00 before one below 0x80 made 1 certificate in 256 unreadable).
  const serial = randomBytes(8);
  serial[0] = 0x40 | (serial[0]! & 0x3f);
  const extensions: Buffer[] = [extension('2.5.29.19', true, options.ca ? seq(bool(true)) : seq())];
  // keyUsage: keyCertSign + cRLSign for a CA (bits 5, 6), digitalSignature for others (bit 0).
  extensions.push(extension('2.5.29.15', true, options.ca ? bits(Buffer.from([0x06]), 1) : bits(Buffer.from([0x80]), 7)));
  if (options.usage) {
    const purposes = options.usage.map((u) => oid(u === 'server' ? '1.3.6.1.5.5.7.3.1' : '1.3.6.1.5.5.7.3.2'));
    extensions.push(extension('2.5.29.37', false, seq(...purposes)));
  }
  if (options.altNames) {
    const names = options.altNames.map((n) => {
      if (isIP(n) === 4) return tlv(0x87, Buffer.from(n.split('.').map(Number)));
      return tlv(0x82, Buffer.from(n, 'ascii'));
    });
    extensions.push(extension('2.5.29.17', false, seq(...names)));
  }
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    name(options.issuer?.commonName ?? commonName),
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 24 * 3600_000))),
    name(commonName),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signer = options.issuer?.keyObject ?? privateKey;
  const der = seq(tbs, ECDSA_SHA256, bits(sign('sha256', tbs, signer)));
  const cert = `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END CERTIFICATE-----\n`;
  const parsed = new X509Certificate(cert);
  const issuerKey = options.issuer ? new X509Certificate(options.issuer.cert).publicKey : publicKey;
  if (!parsed.verify(issuerKey)) throw new Error(`certificate ${commonName}: its signature does not verify`);
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
  return { cert, key, keyObject: createPrivateKey(key), commonName };
}

/** A self-signed certificate authority. */
export function makeCa(commonName = 'Kiln test CA'): Issued {
  return certificate(commonName, { ca: true });
}

/** A server certificate for 127.0.0.1 and localhost, signed by `ca`. */
export function serverCertificate(ca: Issued, commonName = 'kiln test server'): Issued {
  return certificate(commonName, { issuer: ca, altNames: ['127.0.0.1', 'localhost'], usage: ['server'] });
}

/** A client certificate (for mutual TLS), signed by `ca`. */
export function clientCertificate(ca: Issued, commonName = 'kiln test client'): Issued {
  return certificate(commonName, { issuer: ca, usage: ['client'] });
}
