// The one list of HTTP routes. The routers register their handlers from it (familyRouter), the 405
// answers with their Allow header are generated from it, and /openapi.json builds its `paths` from
// it: a route added, removed or given another method here changes all three at once.
import { Router, type RequestHandler, type Response } from 'express';
import { MethodNotAllowed } from './http-errors.ts';
import { errors, json, managedIdentityError, security } from './openapi-parts.ts';

/** Routes grouped by the module that serves them; the group decides the wire shape of errors. */
export type RouteFamily = 'token' | 'sign-in' | 'sign-in-page' | 'managed-identity' | 'diagnostics' | 'diagnostics-page' | 'health' | 'metrics' | 'openapi';

/**
 * problem+json (RFC 9457) everywhere, except the managed-identity endpoints, which answer in the
 * `{ error, error_description }` shape the Azure SDKs parse (docs/operations.md "Error shapes"), and
 * the sign-in pages a person's browser opens, which answer with a page that explains.
 */
export const ERROR_SHAPE: Record<RouteFamily, 'problem' | 'managed-identity' | 'page'> = {
  token: 'problem',
  'sign-in': 'problem',
  'sign-in-page': 'page',
  'managed-identity': 'managed-identity',
  diagnostics: 'problem',
  'diagnostics-page': 'problem',
  health: 'problem',
  metrics: 'problem',
  openapi: 'problem',
};

export interface RouteSpec {
  method: 'GET' | 'POST' | 'DELETE';
  /** Express syntax (`:id`); /openapi.json shows it as `{id}` and documents each parameter. */
  path: string;
  family: RouteFamily;
  /** The OpenAPI 3.1 operation, without its path parameters (derived from `path`). */
  operation: { summary: string } & Record<string, unknown>;
}

const html = (description: string, type: string) => ({ description, content: { [type]: {} } });

export const ROUTES = [
  {
    method: 'POST',
    path: '/v1/token',
    family: 'token',
    operation: {
      summary: 'Get an access token for a credential',
      security,
      requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TokenRequest' } } } },
      responses: { '200': json('the token (Cache-Control: no-store)', { $ref: '#/components/schemas/TokenResponse' }), ...errors(400, 401, 403, 404, 405, 409, 413, 415, 429, 502, 503) },
    },
  },
  {
    method: 'GET',
    path: '/v1/credentials',
    family: 'token',
    operation: { summary: 'Credentials this caller may use', security, responses: { '200': json('the list', { $ref: '#/components/schemas/CredentialList' }), ...errors(401, 429) } },
  },
  {
    method: 'POST',
    path: '/v1/credentials/:id/sign-in',
    family: 'sign-in',
    operation: {
      summary: 'Start a sign-in of a delegated credential: a one-time link for a browser, or a device code (caller with signIn: true)',
      security,
      responses: { '200': json('how the person signs in', { $ref: '#/components/schemas/SignInStart' }), ...errors(400, 401, 403, 404, 429, 502, 503) },
    },
  },
  {
    method: 'GET',
    path: '/v1/credentials/:id/sign-in',
    family: 'sign-in',
    operation: {
      summary: 'The state of a delegated credential: signed in (by whom, last refresh), pending, or sign-in required (never a token)',
      security,
      responses: { '200': json('the state', { $ref: '#/components/schemas/SignInStatus' }), ...errors(400, 401, 403, 404, 429) },
    },
  },
  {
    method: 'DELETE',
    path: '/v1/credentials/:id/sign-in',
    family: 'sign-in',
    operation: {
      summary: 'End a sign-in: revoke the refresh token at the IdP (RFC 7009) where it can, then forget the grant',
      security,
      responses: { '200': json('what was done', { $ref: '#/components/schemas/SignInEnded' }), ...errors(400, 401, 403, 404, 429) },
    },
  },
  {
    method: 'GET',
    path: '/v1/sign-in/start',
    family: 'sign-in-page',
    operation: {
      summary: 'The one-time sign-in link: redirects to the IdP (no caller key: the link is the capability)',
      parameters: [{ name: 'ticket', in: 'query', required: true, schema: { type: 'string' } }],
      responses: { '303': { description: 'to the IdP authorization endpoint' }, '400': html('a page: the link was used, expired or unknown', 'text/html') },
    },
  },
  {
    method: 'GET',
    path: '/v1/sign-in/callback',
    family: 'sign-in-page',
    operation: {
      summary: 'The redirect target of a sign-in (any replica): stores the grant and shows who signed in',
      parameters: [
        { name: 'code', in: 'query', required: false, schema: { type: 'string' } },
        { name: 'state', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'error', in: 'query', required: false, schema: { type: 'string' } },
      ],
      responses: { '200': html('a page: signed in', 'text/html'), '400': html('a page: the sign-in failed, explained', 'text/html') },
    },
  },
  {
    method: 'GET',
    path: '/msi/token',
    family: 'managed-identity',
    operation: {
      summary: 'Managed-identity protocol (App Service flavour, api-version 2019-08-01)',
      security: [{ identityHeader: [] }],
      parameters: [
        { name: 'resource', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'api-version', in: 'query', required: true, schema: { enum: ['2019-08-01', '2017-09-01'] } },
        { name: 'client_id', in: 'query', required: false, schema: { type: 'string' } },
      ],
      responses: { '200': json('the token, every value a string', { $ref: '#/components/schemas/ManagedIdentityToken' }), default: managedIdentityError },
    },
  },
  {
    method: 'GET',
    path: '/metadata/identity/oauth2/token',
    family: 'managed-identity',
    operation: {
      summary: 'IMDS flavour for one configured caller (sidecar mode, loopback only; off by default)',
      parameters: [
        { name: 'Metadata', in: 'header', required: true, schema: { const: 'true' } },
        { name: 'resource', in: 'query', required: true, schema: { type: 'string' } },
        { name: 'api-version', in: 'query', required: true, schema: { type: 'string' } },
      ],
      responses: { '200': json('the token', { $ref: '#/components/schemas/ManagedIdentityToken' }), default: managedIdentityError },
    },
  },
  {
    method: 'POST',
    path: '/v1/diagnostics/assertion',
    family: 'diagnostics',
    operation: {
      summary: 'Check a pasted client assertion against the IdP rules (never sent anywhere)',
      security,
      requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/AssertionCheckRequest' } } } },
      responses: { '200': json('findings', { $ref: '#/components/schemas/AssertionCheck' }), ...errors(400, 401, 403, 404, 413, 415, 429) },
    },
  },
  {
    method: 'GET',
    path: '/v1/diagnostics/credentials/:id',
    family: 'diagnostics',
    operation: {
      summary: 'Certificate facts, token endpoint and the unsigned assertion the broker would send',
      security,
      responses: { '200': json('the view', { $ref: '#/components/schemas/CredentialView' }), ...errors(400, 401, 403, 404, 429) },
    },
  },
  {
    method: 'POST',
    path: '/v1/diagnostics/credentials/:id/probe',
    family: 'diagnostics',
    operation: {
      summary: 'One live exchange bypassing the cache; decoded claims or the IdP error explained, never the token',
      security,
      responses: { '200': json('the outcome', { $ref: '#/components/schemas/ProbeResult' }), ...errors(400, 401, 403, 404, 429) },
    },
  },
  {
    method: 'POST',
    path: '/v1/diagnostics/explain',
    family: 'diagnostics',
    operation: {
      summary: 'Explain a pasted IdP error (AADSTS codes, Keycloak, Okta, Auth0)',
      security,
      requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: {} } } } } },
      responses: { '200': json('the explanation', { $ref: '#/components/schemas/ExplainResult' }), ...errors(400, 401, 403, 413, 415, 429) },
    },
  },
  { method: 'GET', path: '/diagnostics', family: 'diagnostics-page', operation: { summary: 'The diagnostics page for engineers', responses: { '200': html('HTML', 'text/html') } } },
  { method: 'GET', path: '/diagnostics/app.js', family: 'diagnostics-page', operation: { summary: "The diagnostics page's script", responses: { '200': html('JavaScript', 'text/javascript') } } },
  { method: 'GET', path: '/diagnostics/app.css', family: 'diagnostics-page', operation: { summary: "The diagnostics page's style sheet", responses: { '200': html('CSS', 'text/css') } } },
  { method: 'GET', path: '/livez', family: 'health', operation: { summary: 'The process is up', responses: { '200': json('up', { $ref: '#/components/schemas/Liveness' }) } } },
  {
    method: 'GET',
    path: '/readyz',
    family: 'health',
    operation: {
      summary: 'Config loaded, certificates valid, cache state',
      responses: { '200': json('ready (ok or degraded)', { $ref: '#/components/schemas/Readiness' }), '503': json('not ready', { $ref: '#/components/schemas/Readiness' }) },
    },
  },
  { method: 'GET', path: '/metrics', family: 'metrics', operation: { summary: 'Prometheus metrics', responses: { '200': html('text exposition', 'text/plain') } } },
  { method: 'GET', path: '/openapi.json', family: 'openapi', operation: { summary: 'This document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } } },
] as const satisfies readonly RouteSpec[];

type Route = (typeof ROUTES)[number];
type KeyOf<R> = R extends { method: infer M extends string; path: infer P extends string } ? `${M} ${P}` : never;
/** `'POST /v1/token'`: how a router names the table row it serves. */
export type RouteKey<F extends RouteFamily = RouteFamily> = KeyOf<Extract<Route, { family: F }>>;

export function routeKey(route: RouteSpec): string {
  return `${route.method} ${route.path}`;
}

/**
 * The methods a path answers, for the Allow header of its 405 (RFC 9110 §15.5.6). Express answers
 * HEAD on every GET route (RFC 9110 §9.3.2), so HEAD is listed after GET.
 */
export function allowedMethods(path: string, routes: readonly RouteSpec[] = ROUTES): string[] {
  return routes.filter((r) => r.path === path).flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method]));
}

/** The family of the route that matched this request, set before any of its handlers runs. */
export function routeFamilyOf(res: Response): RouteFamily | undefined {
  return res.locals.routeFamily as RouteFamily | undefined;
}

/** A family's handlers by table row; `undefined` when this configuration does not serve the route. */
export type FamilyHandlers<F extends RouteFamily> = Record<RouteKey<F>, RequestHandler | RequestHandler[] | undefined>;

/**
 * A router serving one family's rows of the table: `before` runs first on every one of its paths
 * (e.g. caller authentication, so an anonymous wrong method is still a 401), then the row's handlers.
 * Any other method on those paths (OPTIONS included: the broker has no CORS) is a 405 with Allow.
 */
export function familyRouter<F extends RouteFamily>(family: F, handlers: FamilyHandlers<F>, before: RequestHandler[] = []): Router {
  const router = Router();
  const tag: RequestHandler = (_req, res, next) => {
    res.locals.routeFamily = family;
    next();
  };
  const byKey = handlers as Record<string, RequestHandler | RequestHandler[] | undefined>;
  const served = (ROUTES as readonly RouteSpec[]).filter((r) => r.family === family && byKey[routeKey(r)] !== undefined);
  for (const route of served) {
    const chain = [tag, ...before, ...[byKey[routeKey(route)]!].flat()];
    if (route.method === 'GET') router.get(route.path, ...chain);
    else if (route.method === 'DELETE') router.delete(route.path, ...chain);
    else router.post(route.path, ...chain);
  }
  for (const path of new Set(served.map((r) => r.path))) {
    const allow = allowedMethods(path, served);
    router.all(path, tag, ...before, () => {
      throw new MethodNotAllowed(`${path} accepts ${allow.join(', ')}`, allow);
    });
  }
  return router;
}
