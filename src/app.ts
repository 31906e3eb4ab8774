// createApp(deps): the Express app with every route and the one error handler; no listen().
import express, { type Request } from 'express';
import helmet from 'helmet';
import { RateLimiter } from './callers/rate-limiter.ts';
import type { CallerJwtVerifier } from './callers/caller-jwt-verifier.ts';
import type { Caller, CallerDirectory } from './callers/caller-directory.ts';
import type { Clock } from './kernel/clock.ts';
import { NotFound } from './http/http-errors.ts';
import type { TokenService } from './core/token-service.ts';
import { DiagnosticService } from './diagnostics/diagnostic-service.ts';
import { accessLog } from './http/middleware/access-log.ts';
import { jsonBody } from './http/middleware/json-body.ts';
import { authenticateCaller, requireDiagnostics } from './http/middleware/caller-auth.ts';
import { requestId } from './http/middleware/request-id.ts';
import { errorExit } from './http/error-exit.ts';
import { diagnosticsPageRoutes } from './http/routes/diagnostics-page-routes.ts';
import { diagnosticsRoutes } from './http/routes/diagnostics-routes.ts';
import { healthRoutes } from './http/routes/health-routes.ts';
import { metricsRoutes } from './http/routes/metrics-routes.ts';
import { openApiRoutes } from './http/routes/openapi-routes.ts';
import type { BrokerMetrics } from './observability/metrics.ts';
import { managedIdentityRoutes } from './http/routes/managed-identity-routes.ts';
import { tokenRoutes } from './http/routes/token-routes.ts';
import { signInApiRoutes, signInPageRoutes } from './http/routes/sign-in-routes.ts';
import type { SignInService } from './delegated/sign-in-service.ts';
import { componentLogger, type Logger } from './observability/logger.ts';

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
  /** The sign-ins of delegated credentials, when any is configured. */
  signIns?: SignInService;
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

  // Every router serves its rows of src/http/route-table.ts, and answers 405 for other methods on them.
  // The token routes first: they are the hot path, and no other router needs to see them.
  app.use(tokenRoutes({ tokenService: deps.tokenService, callers: deps.callers, clock: deps.clock, auditLogger, metrics: deps.metrics, authenticate, jsonBody: parseJson }));
  if (deps.signIns) {
    // The browser's pages need no caller key (the one-time link is the capability); the API does.
    app.use(signInPageRoutes({ signIns: deps.signIns }));
    app.use(signInApiRoutes({ signIns: deps.signIns, tokenService: deps.tokenService, auditLogger, authenticate }));
  }
  app.use(healthRoutes({ tokenService: deps.tokenService, clock: deps.clock, isShuttingDown: deps.isShuttingDown ?? (() => false) }));
  if (deps.metrics && deps.serveMetrics !== false) app.use(metricsRoutes(deps.metrics));
  app.use(openApiRoutes());
  // The engineers' page is public; every API call it makes is authenticated below.
  app.use(diagnosticsPageRoutes());

  // The managed-identity protocol authenticates with its own header and answers in its own error shape.
  app.use(managedIdentityRoutes({ tokenService: deps.tokenService, callers: deps.callers, rateLimiter, clock: deps.clock, auditLogger, imdsCaller: deps.imdsCaller, metrics: deps.metrics }));

  app.use('/v1', authenticate);
  app.use('/v1/diagnostics', requireDiagnostics());
  const diagnostics = deps.diagnostics ?? new DiagnosticService({ tokenService: deps.tokenService, clock: deps.clock, logger: componentLogger(deps.logger, 'diagnostics') });
  app.use(diagnosticsRoutes({ diagnostics, tokenService: deps.tokenService, jsonBody: parseJson }));

  app.use(notFound);
  app.use(errorExit(httpLogger));

  return app;
}

function notFound(req: Request): never {
  throw new NotFound(`no route for ${req.method} ${req.path.slice(0, 200)}`);
}

/**
 * The app of the separate metrics port (metrics.port): /metrics only, with the same request ids,
 * 405s and error exit as the API port.
 */
export function createMetricsApp(deps: { metrics: BrokerMetrics; logger: Logger }): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId());
  app.use(metricsRoutes(deps.metrics));
  app.use(notFound);
  app.use(errorExit(componentLogger(deps.logger, 'http')));
  return app;
}
