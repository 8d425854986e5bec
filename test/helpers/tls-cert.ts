/**
 * A throwaway self-signed certificate for TLS tests, made by the openssl command line (present on the CI machines),
 * valid for `localhost` and 127.0.0.1 for one day.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCert {
  dir: string;
  /** Paths of the PEM certificate and key. */
  cert: string;
  key: string;
  /** The certificate's PEM, for a client's `ca`. */
  ca: Buffer;
  remove(): void;
}

export function selfSignedCert(): TestCert {
  const dir = mkdtempSync(path.join(tmpdir(), 'hotline-cert-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', key, '-out', cert,
  ], { stdio: 'ignore', timeout: 30_000 });
  return { dir, cert, key, ca: readFileSync(cert), remove: () => rmSync(dir, { recursive: true, force: true }) };
}
