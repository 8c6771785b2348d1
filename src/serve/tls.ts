import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KilnError } from '../errors.js';

/*
 * The server's TLS material, for HTTPS and gRPC alike: its certificate chain and key, and for mutual
 * TLS the CA that client certificates must chain to. Everything is read and checked at start-up —
 * each file readable and PEM, the key the certificate's own — so a mistake is a start-up error naming
 * the file, never a server that listens and then fails every handshake.
 */

/** A PEM file (a path) or its contents (bytes). */
export type PemSource = string | Uint8Array;

/** The server's TLS settings (HTTPS and gRPC alike), each a PEM file path or its contents; read and checked at start-up. */
export interface TlsOptions {
  /** The server's certificate chain (PEM): its own certificate first, then intermediates. */
  cert: PemSource;
  /** The certificate's private key (PEM, unencrypted). */
  key: PemSource;
  /** Demand a client certificate chaining to this CA (PEM): mutual TLS. */
  clientCa?: PemSource;
}

/** A client's TLS settings (https:// and grpcs:// URLs), PEM text or bytes. */
export interface ClientTls {
  /** CA certificate(s) to trust instead of the system's. */
  ca?: string | Uint8Array;
  /** A client certificate and its key, for servers that demand one (mutual TLS). */
  cert?: string | Uint8Array;
  /** The client certificate's private key (PEM); given together with `cert`. */
  key?: string | Uint8Array;
}

/** Checks that a client certificate comes with its key. */
export function checkClientTls(tls: ClientTls): void {
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new KilnError('INVALID_ARGUMENT', 'a client certificate needs its key, and a key its certificate: give both "cert" and "key" in the client\'s tls option, or neither');
  }
}

/** Checked TLS material: PEM bytes as node:tls and grpc-js take them. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  clientCa: Buffer | undefined;
  /** The server certificate's subject and expiry, for the start-up log. */
  subject: string;
  validTo: string;
}

async function readPem(source: PemSource, what: string): Promise<Buffer> {
  if (typeof source !== 'string') return Buffer.from(source);
  try {
    return await fs.readFile(source);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KilnError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'IO_ERROR', `${what} '${source}' cannot be read (${code ?? (err as Error).message})`);
  }
}

function shown(source: PemSource, what: string): string {
  return typeof source === 'string' ? `${what} '${source}'` : what;
}

function certificates(pem: Buffer, where: string): X509Certificate[] {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g);
  if (!blocks) throw new KilnError('INVALID_ARGUMENT', `${where} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new KilnError('INVALID_ARGUMENT', `${where}: certificate ${i + 1} cannot be parsed (${(err as Error).message})`);
    }
  });
}

/** Reads and checks the certificate, key and client CA. */
export async function loadTls(options: TlsOptions): Promise<TlsMaterial> {
  if (options.cert === undefined || options.key === undefined) {
    throw new KilnError('INVALID_ARGUMENT', `TLS needs both a certificate and its key (--tls-cert and --tls-key); got only the ${options.cert === undefined ? 'key' : 'certificate'}`);
  }
  const certWhere = shown(options.cert, 'the TLS certificate (--tls-cert)');
  const keyWhere = shown(options.key, 'the TLS key (--tls-key)');
  const [cert, key] = await Promise.all([readPem(options.cert, 'the TLS certificate (--tls-cert)'), readPem(options.key, 'the TLS key (--tls-key)')]);
  const chain = certificates(cert, certWhere);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new KilnError('INVALID_ARGUMENT', `${keyWhere} is not a readable unencrypted PEM private key (${(err as Error).message})`);
  }
  if (!chain[0]!.checkPrivateKey(privateKey)) {
    throw new KilnError('INVALID_ARGUMENT', `${keyWhere} does not match ${certWhere} (subject ${chain[0]!.subject.replace(/\n/g, ', ')}): give the key the certificate was issued for`);
  }
  let clientCa: Buffer | undefined;
  if (options.clientCa !== undefined) {
    clientCa = await readPem(options.clientCa, 'the client CA (--tls-client-ca)');
    certificates(clientCa, shown(options.clientCa, 'the client CA (--tls-client-ca)'));
  }
  return { cert, key, clientCa, subject: chain[0]!.subject.replace(/\n/g, ', '), validTo: chain[0]!.validTo };
}
