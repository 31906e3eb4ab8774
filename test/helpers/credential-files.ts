// Test credentials: throw-away certificates written to a temp folder, as an operator would mount them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { createThrowawayCertificate, type ThrowawayCertificate, type ThrowawayCertificateOptions } from '../../src/sandbox/throwaway-certificate.ts';

export interface TempDir {
  path: string;
  write(name: string, content: string | Buffer): string;
  remove(): void;
}

export function tempDir(prefix = 'token-broker-test-'): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return {
    path,
    write(name, content) {
      const file = join(path, name);
      writeFileSync(file, content, { mode: 0o600 });
      return file;
    },
    remove: () => rmSync(path, { recursive: true, force: true }),
  };
}

export interface CredentialFiles {
  cert: ThrowawayCertificate;
  certFile: string;
  keyFile: string;
}

/** Generates a certificate + key and writes `<name>.crt` / `<name>.key` into the folder. */
export async function writeCredentialFiles(dir: TempDir, name: string, options: ThrowawayCertificateOptions = {}): Promise<CredentialFiles> {
  const cert = await createThrowawayCertificate({ commonName: name, ...options });
  return { cert, certFile: dir.write(`${name}.crt`, cert.certPem), keyFile: dir.write(`${name}.key`, cert.keyPem) };
}

export function sha256Hex(value: string): string {
  return createHash('sha256').update(value).digest('hex');
}
