import { hash } from 'node:crypto';
import type { ServedToken } from '../core/token-service.ts';
import type { Logger } from '../observability/logger.ts';

const hashes = new Map<string, string>();
const MAX_REMEMBERED = 1000;

/**
 * The first 12 characters of the token's base64url SHA-256: enough to correlate, useless to replay.
 * Remembered per token, since the same token is served many times.
 */
export function tokenHash(token: string): string {
  let value = hashes.get(token);
  if (value === undefined) {
    if (hashes.size >= MAX_REMEMBERED) hashes.clear();
    value = hash('sha256', token, 'base64url').slice(0, 12);
    hashes.set(token, value);
  }
  return value;
}

/**
 * One audit line per token served, whatever the route (docs/design.md §6.4). Never the token. A
 * delegated credential's token carries a person's authority: `onBehalfOf` names them (the ID
 * token's subject), so the audit says whose authority each caller used.
 */
export function auditTokenServed(logger: Logger, requestId: string, callerId: string, served: ServedToken, route: string, onBehalfOf?: string): void {
  logger.info(
    {
      event: 'token_served',
      requestId,
      route,
      callerId,
      credentialId: served.credentialId,
      onBehalfOf,
      scope: served.requestedScope,
      cacheOutcome: served.cacheOutcome,
      stale: served.stale || undefined,
      tokenSha256: tokenHash(served.accessToken),
      expiresOn: Math.floor(served.expiresAt / 1000),
    },
    'token served',
  );
}
