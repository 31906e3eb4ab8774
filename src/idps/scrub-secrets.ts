// Text that came from outside (an IdP's error_description, a pasted error) can carry what must never
// be shown or stored: an IdP that echoes the request may quote the client assertion, a token or a
// client secret. Every such text goes through scrubSecrets before it becomes part of an error, a log
// line, a failure record or a diagnostic (docs/operations.md, "Misbehaving identity providers").
// A leaf module: it imports nothing, so providers and diagnostics can both use it.

/** A compact JWS/JWE, or a piece of one (an echo may be cut short): base64url JSON header "eyJ…". */
const JOSE = /eyJ[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)*/g;
/** The value of a secret-bearing field, in a form (`client_assertion=…`) or JSON (`"client_secret":"…"`). */
const SECRET_FIELD = /\b(client_assertion|client_secret|assertion|access_token|refresh_token|id_token|password)(\s*=\s*["']?|["']\s*:\s*["']?)([^\s&"',;)[][^\s&"',;)]*)/gi;
/**
 * Long opaque runs (opaque tokens, secrets, base64 blobs). Pure hex is left alone: thumbprints
 * (40 or 64 hex digits) are what an engineer compares with the portal. `/` is not part of the run,
 * so URLs and paths survive.
 */
const OPAQUE = /[A-Za-z0-9_\-+=~.]{64,}/g;

export const REMOVED_JWT = '[JWT removed]';
export const REMOVED_SECRET = '[removed]';

/** `known`: values that must never show, whatever they look like (the credential's client secret). */
export function scrubSecrets(text: string, known: readonly string[] = []): string {
  let out = text;
  for (const value of known) {
    if (value.length < 4) continue;
    for (const form of new Set([value, encodeURIComponent(value)])) out = out.split(form).join(REMOVED_SECRET);
  }
  return out
    .replace(JOSE, REMOVED_JWT)
    .replace(SECRET_FIELD, (_match, field: string, separator: string) => `${field}${separator}${REMOVED_SECRET}`)
    .replace(OPAQUE, (run) => (/^[0-9a-fA-F]+$/.test(run) || /^[A-Za-z.-]+$/.test(run) ? run : REMOVED_SECRET));
}
