// POST /v1/token and GET /v1/credentials (DESIGN §5 "Tokens").
import { createHash } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import { DEFAULT_MIN_TTL_SECONDS } from '../../config/schema.ts';
import { normaliseScope } from '../../core/cache-key.ts';
import type { CallerDirectory, Caller } from '../../core/caller-directory.ts';
import type { Clock } from '../../core/clock.ts';
import { Forbidden, InvalidRequest } from '../../core/errors.ts';
import type { CredentialRuntime, TokenService } from '../../core/token-service.ts';
import type { Logger } from '../../observability/logger.ts';
import { currentCaller } from '../middleware/caller-auth.ts';
import { UnsupportedMediaType } from '../problem.ts';
import { parseRequest } from '../validate.ts';

const tokenRequestSchema = z
  .object({
    credential: z.string().min(1).max(64),
    scope: z.string().max(2048).optional(),
    resource: z.string().min(1).max(2048).optional(),
    min_ttl_seconds: z.number().int().min(0).max(86_400).optional(),
  })
  .strict();

/** Entra v2 grants app tokens only for `<resource>/.default`; a bare resource means exactly that. */
function entraScope(value: string): string {
  const trimmed = value.trim();
  return trimmed.endsWith('/.default') ? trimmed : `${trimmed.replace(/\/+$/, '')}/.default`;
}

/** The credential's configured scopes, normalised the way requests are. */
export function configuredScopes(runtime: CredentialRuntime): string[] {
  const c = runtime.config;
  return c.scopes.map((s) => (c.provider === 'entra' ? entraScope(s) : normaliseScope(s)));
}

function resolveScope(runtime: CredentialRuntime, body: z.infer<typeof tokenRequestSchema>): string {
  const c = runtime.config;
  if (body.scope !== undefined && body.resource !== undefined) {
    throw new InvalidRequest('give scope or resource, not both', 'resource');
  }
  const allowed = configuredScopes(runtime);
  let scope: string;
  if (body.resource !== undefined) {
    if (c.provider !== 'entra') throw new InvalidRequest(`resource applies to entra credentials; '${c.id}' is an oidc credential: use scope`, 'resource');
    scope = entraScope(body.resource);
  } else if (body.scope !== undefined && body.scope.trim() !== '') {
    scope = c.provider === 'entra' ? entraScope(body.scope) : normaliseScope(body.scope);
  } else {
    scope = allowed[0] ?? '';
  }
  if (!allowed.includes(scope) && !(scope === '' && allowed.length === 0)) {
    throw new Forbidden(
      allowed.length > 0
        ? `scope '${scope}' is not configured for credential '${c.id}' (configured: ${allowed.join(', ')})`
        : `credential '${c.id}' is configured without scopes; omit scope`,
    );
  }
  return scope;
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url').slice(0, 12);
}

export function tokenRoutes(deps: { tokenService: TokenService; callers: CallerDirectory; clock: Clock; auditLogger: Logger }): Router {
  const router = Router();

  router.post('/v1/token', async (req: Request, res: Response) => {
    if (!req.is('application/json')) throw new UnsupportedMediaType('send the request as Content-Type: application/json');
    const body = parseRequest(tokenRequestSchema, req.body);
    const caller = currentCaller(res);
    const runtime = credentialFor(deps.tokenService, deps.callers, caller, body.credential);
    const scope = resolveScope(runtime, body);
    if (!deps.callers.mayUseScope(caller, runtime.config.id, scope)) {
      throw new Forbidden(`caller '${caller.id}' may not request scope '${scope}' of credential '${runtime.config.id}'`);
    }
    const served = await deps.tokenService.getToken({
      credentialId: runtime.config.id,
      scope,
      minTtlSeconds: body.min_ttl_seconds ?? DEFAULT_MIN_TTL_SECONDS,
      minTtlExplicit: body.min_ttl_seconds !== undefined,
    });
    const now = deps.clock.now();
    deps.auditLogger.info(
      {
        event: 'token_served',
        requestId: res.locals.requestId as string,
        callerId: caller.id,
        credentialId: served.credentialId,
        scope,
        cacheOutcome: served.cacheOutcome,
        stale: served.stale || undefined,
        tokenSha256: tokenHash(served.accessToken),
        expiresOn: Math.floor(served.expiresAt / 1000),
      },
      'token served',
    );
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
  });

  router.get('/v1/credentials', (_req: Request, res: Response) => {
    const caller = currentCaller(res);
    const credentials = deps.tokenService
      .listCredentials()
      .filter((r) => deps.callers.mayUseCredential(caller, r.config.id))
      .map((r) => {
        const scopes = configuredScopes(r).filter((s) => deps.callers.mayUseScope(caller, r.config.id, s));
        return {
          id: r.config.id,
          provider: r.config.provider,
          ...(r.config.provider === 'oidc' ? { preset: r.config.preset } : { endpoint_version: r.config.endpointVersion, cloud: r.config.cloud }),
          scopes,
          default_scope: scopes[0] ?? null,
        };
      });
    res.setHeader('Cache-Control', 'no-store');
    res.json({ credentials });
  });

  return router;
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
