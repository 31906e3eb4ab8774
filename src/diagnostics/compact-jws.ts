// Decodes a pasted compact JWS (RFC 7515 §7.1) without trusting it: header and claims as JSON
// objects, the signing input and the signature bytes for a local check. The signature never leaves
// this module's callers as text.
import { isRecord } from './assertion-rule.ts';

export interface DecodedJws {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signingInput: Buffer;
  signature: Buffer;
}

export type DecodeResult =
  | { ok: true; jws: DecodedJws }
  | { ok: false; reason: string; header?: Record<string, unknown>; claims?: Record<string, unknown> };

const B64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string, what: string): { value?: Record<string, unknown>; problem?: string } {
  if (!B64URL.test(part)) {
    return { problem: /=$/.test(part) ? `the ${what} is padded with '=': base64url parts carry no padding (RFC 7515 §2)` : `the ${what} is not base64url` };
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    return { problem: `the ${what} is not base64url-encoded JSON` };
  }
  return isRecord(value) ? { value } : { problem: `the ${what} is JSON but not an object` };
}

/** Accepts the JWS with surrounding whitespace or quotes, as it is often pasted. */
export function decodeCompactJws(text: string): DecodeResult {
  const compact = text.trim().replace(/^(["'])(.*)\1$/s, '$2').trim();
  if (compact === '') return { ok: false, reason: 'the input is empty' };
  const parts = compact.split('.');
  if (parts.length === 5) return { ok: false, reason: 'five parts: this is an encrypted JWE, not a signed JWS' };
  if (parts.length !== 3) return { ok: false, reason: `${parts.length} part${parts.length === 1 ? '' : 's'} separated by '.', a compact JWS has three (header.payload.signature)` };
  const [h, p, s] = parts as [string, string, string];
  const header = decodeJson(h, 'header');
  const claims = decodeJson(p, 'payload');
  const problems = [header.problem, claims.problem].filter(Boolean);
  if (!B64URL.test(s)) problems.push('the signature is not base64url');
  if (problems.length > 0) return { ok: false, reason: problems.join('; '), header: header.value, claims: claims.value };
  return {
    ok: true,
    jws: { header: header.value!, claims: claims.value!, signingInput: Buffer.from(`${h}.${p}`, 'ascii'), signature: Buffer.from(s, 'base64url') },
  };
}
