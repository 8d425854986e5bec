/**
 * TLS for a listener: a certificate and its private key, as PEM files. The files are read when the listener is
 * created, so a worker started by `hotline upgrade` picks up a renewed certificate. A TLS connection cannot move
 * to another process (its session keys live in this process's OpenSSL, nodejs/node#4037): an upgrade sends it away.
 */
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { HotlineError, messageOf } from '../errors.js';

/** A listener's certificate and private key: paths of PEM files. */
export interface TlsOptions {
  /** Path of the PEM certificate (the chain, leaf first, if there are intermediates). */
  cert: string;
  /** Path of the PEM private key, unencrypted. */
  key: string;
}

/** What a TLS server is created with. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
}

/** Check the shape of `tls` options without touching the disk. Throws HOTLINE_E_TLS_CONFIG. */
export function checkTlsOptions(o: unknown, where: string): asserts o is TlsOptions {
  const t = o as Partial<TlsOptions> | null;
  if (typeof t !== 'object' || t === null || typeof t.cert !== 'string' || typeof t.key !== 'string' || !t.cert || !t.key) {
    throw new HotlineError('HOTLINE_E_TLS_CONFIG', `${where} needs both cert and key, as paths of PEM files`);
  }
}

/**
 * Read the certificate and key and check that OpenSSL accepts them together, so a bad pair is a coded error at
 * start rather than a failure at the first client's handshake. Throws HOTLINE_E_TLS_CONFIG.
 */
export function loadTls(o: TlsOptions, where = 'tls'): TlsMaterial {
  checkTlsOptions(o, where);
  const cert = readPem(o.cert, 'certificate', where);
  const key = readPem(o.key, 'key', where);
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new HotlineError('HOTLINE_E_TLS_CONFIG', `${where}: OpenSSL refused the certificate ${o.cert} with the key ${o.key}: ${messageOf(err)}`, { cause: err });
  }
  return { cert, key };
}

function readPem(file: string, what: string, where: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new HotlineError('HOTLINE_E_TLS_CONFIG', `${where}: cannot read the ${what} ${file}: ${messageOf(err)}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN ')) throw new HotlineError('HOTLINE_E_TLS_CONFIG', `${where}: the ${what} ${file} is not a PEM file`);
  return pem;
}
