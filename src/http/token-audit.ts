import { createHash } from 'node:crypto';
import type { ServedToken } from '../core/token-service.ts';
import type { Logger } from '../observability/logger.ts';

/** The first 12 characters of the token's base64url SHA-256: enough to correlate, useless to replay. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 12);
}

/** One audit line per token served, whatever the route (DESIGN §6 "Security"). Never the token. */
export function auditTokenServed(logger: Logger, requestId: string, callerId: string, served: ServedToken, route: string): void {
  logger.info(
    {
      event: 'token_served',
      requestId,
      route,
      callerId,
      credentialId: served.credentialId,
      scope: served.requestedScope,
      cacheOutcome: served.cacheOutcome,
      stale: served.stale || undefined,
      tokenSha256: tokenHash(served.accessToken),
      expiresOn: Math.floor(served.expiresAt / 1000),
    },
    'token served',
  );
}
