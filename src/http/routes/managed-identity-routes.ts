// The managed-identity protocol, so unmodified Azure SDK clients get broker tokens (docs/design.md §5.3,
// §12):
// - App Service flavour: GET /msi/token?resource=…&api-version=2019-08-01[&client_id=…] with
//   X-IDENTITY-HEADER (also api-version 2017-09-01 with a `secret` header and `clientid`);
// - optional IMDS sidecar flavour: GET /metadata/identity/oauth2/token with Metadata: true, bound to
//   one configured caller, loopback listeners only.
// Errors use the shape the SDKs parse, { error, error_description }: the handlers throw, and the app's
// one error exit (error-exit.ts) logs and renders them in that shape for this route family.
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { DEFAULT_MIN_TTL_SECONDS } from '../../config/schema.ts';
import type { RateLimiter } from '../../callers/rate-limiter.ts';
import type { Caller, CallerDirectory } from '../../callers/caller-directory.ts';
import type { Clock } from '../../kernel/clock.ts';
import { Forbidden, InvalidRequest, Unauthenticated } from '../../kernel/errors.ts';
import { resolveScope } from '../../core/scopes.ts';
import type { CredentialRuntime, TokenService } from '../../core/token-service.ts';
import type { Logger } from '../../observability/logger.ts';
import { familyRouter } from '../route-table.ts';
import { parseRequest } from '../validate.ts';
import { auditTokenServed } from '../token-audit.ts';
import type { BrokerMetrics } from '../../observability/metrics.ts';
import { requestOutcome } from './token-routes.ts';

const single = z.string().min(1).max(2048);

const appServiceQuery = z
  .object({
    resource: single,
    'api-version': z.enum(['2019-08-01', '2017-09-01'], { message: "must be '2019-08-01' (or '2017-09-01')" }),
    client_id: single.optional(),
    clientid: single.optional(),
    // Identities chosen by object or resource id are an Azure platform notion the broker has not got.
    principal_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
    object_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
    mi_res_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
    msi_res_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
  })
  .strict();

const imdsQuery = z
  .object({
    resource: single,
    'api-version': z.string().regex(/^20\d\d-\d\d-\d\d$/, 'must be an IMDS api-version such as 2018-02-01'),
    client_id: single.optional(),
    object_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
    mi_res_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
    msi_res_id: z.never({ message: 'not supported: choose the identity with client_id' }).optional(),
  })
  .strict();

interface Deps {
  tokenService: TokenService;
  callers: CallerDirectory;
  rateLimiter: RateLimiter;
  clock: Clock;
  auditLogger: Logger;
  /** The caller the IMDS sidecar endpoint serves; absent: the endpoint does not exist. */
  imdsCaller?: Caller;
  metrics?: BrokerMetrics;
}

/** `client_id` picks among the caller's credentials by their clientId; without it, the default one. */
function credentialFor(deps: Deps, caller: Caller, clientId: string | undefined): CredentialRuntime {
  const allowed = deps.tokenService.listCredentials().filter((r) => deps.callers.mayUseCredential(caller, r.config.id));
  if (clientId !== undefined) {
    const match = allowed.find((r) => r.config.clientId.toLowerCase() === clientId.toLowerCase());
    if (!match) throw new InvalidRequest(`client_id '${clientId}' is none of the identities this caller may use`, 'client_id');
    return match;
  }
  const fallback = caller.defaultCredential && allowed.find((r) => r.config.id === caller.defaultCredential);
  if (!fallback) throw new InvalidRequest('this caller may use several identities: pass client_id', 'client_id');
  return fallback;
}

async function serveToken(deps: Deps, req: Request, res: Response, caller: Caller, query: { resource: string; clientId?: string }) {
  deps.rateLimiter.take(caller);
  const runtime = credentialFor(deps, caller, query.clientId);
  const scope = resolveScope(runtime, { resource: query.resource });
  if (!deps.callers.mayUseScope(caller, runtime.config.id, scope)) {
    throw new Forbidden(`caller '${caller.id}' may not request resource '${query.resource}' of credential '${runtime.config.id}'`);
  }
  let served;
  try {
    served = await deps.tokenService.getToken({ credentialId: runtime.config.id, scope, minTtlSeconds: DEFAULT_MIN_TTL_SECONDS });
  } catch (err) {
    deps.metrics?.tokenServed(caller.id, runtime.config.id, 'error');
    throw err;
  }
  deps.metrics?.tokenServed(caller.id, runtime.config.id, requestOutcome(served));
  auditTokenServed(deps.auditLogger, res.locals.requestId as string, caller.id, served, req.path, runtime.grant?.subject());
  const now = deps.clock.now();
  res.setHeader('Cache-Control', 'no-store');
  // Every value a string, as App Service and IMDS answer; msal-node reads expires_on, msal-python expires_in.
  res.json({
    access_token: served.accessToken,
    expires_on: String(Math.floor(served.expiresAt / 1000)),
    expires_in: String(Math.max(0, Math.floor((served.expiresAt - now) / 1000))),
    not_before: String(Math.floor(served.obtainedAt / 1000)),
    resource: query.resource,
    token_type: served.tokenType,
    client_id: runtime.config.clientId,
  });
}

export function managedIdentityRoutes(deps: Deps): Router {
  const appService = async (req: Request, res: Response) => {
    const secret = req.get('x-identity-header') ?? req.get('secret');
    const caller = secret ? deps.callers.authenticateIdentityHeader(secret) : undefined;
    if (!caller) throw new Unauthenticated('a valid X-IDENTITY-HEADER is required');
    res.locals.caller = caller;
    const query = parseRequest(appServiceQuery, req.query);
    await serveToken(deps, req, res, caller, { resource: query.resource, clientId: query.client_id ?? query.clientid });
  };

  const imdsCaller = deps.imdsCaller;
  const imds =
    imdsCaller &&
    (async (req: Request, res: Response) => {
      // IMDS' own SSRF guard: a browser or a redirected request cannot add this header.
      if (req.get('metadata') !== 'true') throw new InvalidRequest('Required metadata header not specified');
      res.locals.caller = imdsCaller;
      const query = parseRequest(imdsQuery, req.query);
      await serveToken(deps, req, res, imdsCaller, { resource: query.resource, clientId: query.client_id });
    });

  // Without a bound caller the IMDS path is not served at all (404), as on a host without IMDS.
  return familyRouter('managed-identity', { 'GET /msi/token': appService, 'GET /metadata/identity/oauth2/token': imds });
}
