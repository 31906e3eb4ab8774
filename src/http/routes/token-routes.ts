// POST /v1/token and GET /v1/credentials (docs/design.md §5.2).
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import { DEFAULT_MIN_TTL_SECONDS } from '../../config/schema.ts';
import type { CallerDirectory, Caller } from '../../callers/caller-directory.ts';
import type { Clock } from '../../kernel/clock.ts';
import { Forbidden } from '../../kernel/errors.ts';
import { UnsupportedMediaType } from '../http-errors.ts';
import { configuredScopes, resolveScope } from '../../core/scopes.ts';
import { auditTokenServed } from '../token-audit.ts';
import type { CredentialRuntime, ServedToken, TokenService } from '../../core/token-service.ts';
import type { BrokerMetrics, RequestOutcome } from '../../observability/metrics.ts';
import type { Logger } from '../../observability/logger.ts';
import { currentCaller } from '../middleware/caller-auth.ts';
import { familyRouter } from '../route-table.ts';
import { parseRequest } from '../validate.ts';

const tokenRequestSchema = z
  .object({
    credential: z.string().min(1).max(64),
    scope: z.string().max(2048).optional(),
    resource: z.string().min(1).max(2048).optional(),
    min_ttl_seconds: z.number().int().min(0).max(86_400).optional(),
  })
  .strict();

export { configuredScopes } from '../../core/scopes.ts';

/** The metrics outcome of a served token: stale and coalesced say more than the cache field. */
export function requestOutcome(served: ServedToken): RequestOutcome {
  return served.stale ? 'stale' : served.coalesced ? 'coalesced' : served.cacheOutcome;
}

export interface TokenRouteDeps {
  tokenService: TokenService;
  callers: CallerDirectory;
  clock: Clock;
  auditLogger: Logger;
  metrics?: BrokerMetrics;
  /** Caller authentication (and rate limit), run before anything else on these routes. */
  authenticate: RequestHandler;
  /** The JSON body parser. */
  jsonBody: RequestHandler[];
}

export function tokenRoutes(deps: TokenRouteDeps): Router {
  const issueToken = async (req: Request, res: Response) => {
    if (!req.is('application/json')) throw new UnsupportedMediaType('send the request as Content-Type: application/json');
    const body = parseRequest(tokenRequestSchema, req.body);
    const caller = currentCaller(res);
    const runtime = credentialFor(deps.tokenService, deps.callers, caller, body.credential);
    const scope = resolveScope(runtime, body);
    if (!deps.callers.mayUseScope(caller, runtime.config.id, scope)) {
      throw new Forbidden(`caller '${caller.id}' may not request scope '${scope}' of credential '${runtime.config.id}'`);
    }
    let served;
    try {
      served = await deps.tokenService.getToken({
        credentialId: runtime.config.id,
        scope,
        minTtlSeconds: body.min_ttl_seconds ?? DEFAULT_MIN_TTL_SECONDS,
        minTtlExplicit: body.min_ttl_seconds !== undefined,
      });
    } catch (err) {
      deps.metrics?.tokenServed(caller.id, runtime.config.id, 'error');
      throw err;
    }
    deps.metrics?.tokenServed(caller.id, runtime.config.id, requestOutcome(served));
    const now = deps.clock.now();
    auditTokenServed(deps.auditLogger, res.locals.requestId as string, caller.id, served, 'token', runtime.grant?.subject());
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Pragma', 'no-cache');
    res.json({
      access_token: served.accessToken,
      token_type: served.tokenType,
      expires_in: Math.max(0, Math.floor((served.expiresAt - now) / 1000)),
      expires_on: Math.floor(served.expiresAt / 1000),
      scope: served.scope ?? scope,
      credential: served.credentialId,
      cache: served.cacheOutcome,
    });
  };

  const listCredentials = (_req: Request, res: Response) => {
    const caller = currentCaller(res);
    const credentials = deps.tokenService
      .listCredentials()
      .filter((r) => deps.callers.mayUseCredential(caller, r.config.id))
      .map((r) => {
        const scopes = configuredScopes(r).filter((s) => deps.callers.mayUseScope(caller, r.config.id, s));
        return {
          id: r.config.id,
          provider: r.config.provider,
          ...r.idp.listingFacts(r.config),
          ...(r.config.signIn ? { delegated: true } : {}),
          scopes,
          default_scope: scopes[0] ?? null,
        };
      });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ credentials });
  };

  // Authentication first on both paths, so an anonymous wrong method is a 401, not a 405.
  return familyRouter('token', { 'POST /v1/token': [...deps.jsonBody, issueToken], 'GET /v1/credentials': listCredentials }, [deps.authenticate]);
}

/**
 * The credential, if it exists and the caller may use it. An unknown id is 404 and a known one the
 * caller may not use is 403: callers are authenticated internal services, and telling them which
 * mistake they made is worth more than hiding which ids exist.
 */
function credentialFor(tokenService: TokenService, callers: CallerDirectory, caller: Caller, id: string): CredentialRuntime {
  const runtime = tokenService.credential(id);
  if (!callers.mayUseCredential(caller, id)) throw new Forbidden(`caller '${caller.id}' may not use credential '${id}'`);
  return runtime;
}
