// AES-256-GCM for tokens at rest in Redis. The key id travels with each value so keys can be
// rotated: the first key in the file encrypts, every key in it decrypts.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

interface CacheKey {
  id: string;
  key: Buffer;
}

const FORMAT = 'e1';

function parseKey(line: string, lineNo: number): Buffer {
  const trimmed = line.trim();
  const key = /^[0-9a-f]{64}$/i.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new Error(`line ${lineNo}: each key must be 32 random bytes, base64 or hex (e.g. openssl rand -base64 32)`);
  }
  return key;
}

export class CacheCipher {
  private constructor(private readonly keys: CacheKey[]) {}

  /** One key per line; blank lines and # comments ignored; the first key encrypts. */
  static fromKeyFile(path: string): CacheCipher {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${path} (${(err as NodeJS.ErrnoException).code})`, { cause: err });
    }
    const keys = text
      .split('\n')
      .map((line, i) => ({ line, lineNo: i + 1 }))
      .filter(({ line }) => line.trim() && !line.trim().startsWith('#'))
      .map(({ line, lineNo }) => {
        const key = parseKey(line, lineNo);
        return { id: createHash('sha256').update(key).digest('base64url').slice(0, 8), key };
      });
    if (keys.length === 0) throw new Error(`${path} holds no key (one base64 or hex 32-byte key per line)`);
    return new CacheCipher(keys);
  }

  /** `e1.<key id>.<iv>.<ciphertext>.<tag>`; the cache key is bound as associated data so values cannot be swapped between keys. */
  encrypt(plaintext: string, associatedData: string): string {
    const { id, key } = this.keys[0]!;
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(associatedData));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [FORMAT, id, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** The plaintext, or undefined for a value this cipher cannot open (unknown key, tampered, not encrypted). */
  decrypt(value: string, associatedData: string): string | undefined {
    const [format, id, iv, ciphertext, tag] = value.split('.');
    if (format !== FORMAT || !iv || !ciphertext || !tag) return undefined;
    const key = this.keys.find((k) => k.id === id);
    if (!key) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(iv, 'base64url'));
      decipher.setAAD(Buffer.from(associatedData));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      return undefined;
    }
  }
}
