// createApp(deps): the Express app with every route and the one error handler; no listen().
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { RateLimiter } from './callers/rate-limiter.ts';
import type { CallerJwtVerifier } from './callers/caller-jwt-verifier.ts';
import type { Caller, CallerDirectory } from './core/caller-directory.ts';
import type { Clock } from './core/clock.ts';
import { BrokerError, MethodNotAllowed, NotFound } from './core/errors.ts';
import type { TokenService } from './core/token-service.ts';
import { DiagnosticService } from './diagnostics/diagnostic-service.ts';
import { accessLog } from './http/middleware/access-log.ts';
import { jsonBody } from './http/middleware/json-body.ts';
import { authenticateCaller, requireDiagnostics } from './http/middleware/caller-auth.ts';
import { requestId } from './http/middleware/request-id.ts';
import { sendProblem, toBrokerError } from './http/problem.ts';
import { diagnosticsPageRoutes } from './http/routes/diagnostics-page-routes.ts';
import { diagnosticsRoutes } from './http/routes/diagnostics-routes.ts';
import { healthRoutes } from './http/routes/health-routes.ts';
import { metricsRoutes } from './http/routes/metrics-routes.ts';
import { openApiRoutes } from './http/routes/openapi-routes.ts';
import type { BrokerMetrics } from './observability/metrics.ts';
import { managedIdentityRoutes } from './http/routes/managed-identity-routes.ts';
import { tokenRoutes } from './http/routes/token-routes.ts';
import { componentLogger, type Logger } from './observability/logger.ts';

/** Known paths and their methods, for 405 with Allow instead of a 404 on a wrong method. */
const ROUTE_METHODS: Record<string, string[]> = {
  '/v1/token': ['POST'],
  '/v1/credentials': ['GET', 'HEAD'],
  '/livez': ['GET', 'HEAD'],
  '/readyz': ['GET', 'HEAD'],
  '/openapi.json': ['GET', 'HEAD'],
  '/v1/diagnostics/assertion': ['POST'],
  '/v1/diagnostics/explain': ['POST'],
  '/diagnostics': ['GET', 'HEAD'],
};

export interface AppDeps {
  tokenService: TokenService;
  callers: CallerDirectory;
  /** Callers proving themselves with JWTs (Kubernetes service account tokens). */
  jwtVerifier?: CallerJwtVerifier;
  rateLimiter?: RateLimiter;
  /** The caller the IMDS sidecar endpoint serves, when that mode is on. */
  imdsCaller?: Caller;
  metrics?: BrokerMetrics;
  /** Serve /metrics on this app (false when a separate metrics port is configured). */
  serveMetrics?: boolean;
  clock: Clock;
  logger: Logger;
  bodyLimitBytes: number;
  isShuttingDown?: () => boolean;
  diagnostics?: DiagnosticService;
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  const httpLogger = componentLogger(deps.logger, 'http');
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use(requestId());
  app.use(helmet());
  app.use(accessLog(httpLogger, deps.metrics && ((route, status) => deps.metrics!.httpRequest(route, status))));

  const auditLogger = componentLogger(deps.logger, 'audit');
  const rateLimiter = deps.rateLimiter ?? new RateLimiter(deps.clock);
  // Callers are authenticated (and rate-limited) before any body is read: an anonymous request costs no parsing.
  const authenticate = authenticateCaller(deps.callers, deps.jwtVerifier, rateLimiter);
  const parseJson = jsonBody(deps.bodyLimitBytes);

  // The token routes first: they are the hot path, and no other router needs to see them.
  app.use(tokenRoutes({ tokenService: deps.tokenService, callers: deps.callers, clock: deps.clock, auditLogger, metrics: deps.metrics, authenticate, jsonBody: parseJson }));
  app.use(healthRoutes({ tokenService: deps.tokenService, clock: deps.clock, isShuttingDown: deps.isShuttingDown ?? (() => false) }));
  if (deps.metrics && deps.serveMetrics !== false) app.use(metricsRoutes(deps.metrics));
  app.use(openApiRoutes());
  // The engineers' page is public; every API call it makes is authenticated below.
  app.use(diagnosticsPageRoutes());

  // The managed-identity protocol authenticates with its own header and answers in its own error shape.
  app.use(managedIdentityRoutes({ tokenService: deps.tokenService, callers: deps.callers, rateLimiter, clock: deps.clock, auditLogger, imdsCaller: deps.imdsCaller, metrics: deps.metrics }));

  app.use('/v1', authenticate);
  app.use('/v1/diagnostics', requireDiagnostics());
  app.use(parseJson);
  const diagnostics = deps.diagnostics ?? new DiagnosticService({ tokenService: deps.tokenService, clock: deps.clock, logger: componentLogger(deps.logger, 'diagnostics') });
  app.use(diagnosticsRoutes({ diagnostics, tokenService: deps.tokenService }));

  app.use((req: Request) => {
    const allow = ROUTE_METHODS[req.path];
    if (allow) throw new MethodNotAllowed(`${req.path} accepts ${allow.join(', ')}`, allow);
    throw new NotFound(`no route for ${req.method} ${req.path.slice(0, 200)}`);
  });

  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const error = toBrokerError(err);
    const fields = { requestId: res.locals.requestId as string, code: error.code, status: error.status };
    // Log once, here at the edge: warn for refusals by the IdP, error for our own failures.
    if (error.status >= 500 && error.code !== 'idp_rejected' && error.code !== 'idp_unavailable') {
      httpLogger.error({ ...fields, err: error.cause instanceof Error ? { type: error.cause.name, message: error.cause.message } : undefined, message: error.message }, 'request failed');
    } else if (error.code === 'idp_rejected' || error.code === 'idp_unavailable') {
      httpLogger.warn({ ...fields, message: error.message }, 'identity provider failure');
    }
    sendProblem(res, error instanceof BrokerError ? error : toBrokerError(error), res.locals.requestId as string);
  });

  return app;
}
