// /v1/diagnostics/* (docs/design.md §5.4, contract) for callers with diagnostics: true. app.ts
// mounts requireDiagnostics() in front, after authentication; only the routes that take a body read
// one, so a wrong method or an unknown path is answered without parsing it.
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import { configuredScopes } from '../../core/scopes.ts';
import { InvalidRequest } from '../../kernel/errors.ts';
import { UnsupportedMediaType } from '../http-errors.ts';
import type { TokenService } from '../../core/token-service.ts';
import { IDP_PROFILE_NAMES } from '../../diagnostics/assertion-rule.ts';
import type { DiagnosticService } from '../../diagnostics/diagnostic-service.ts';
import { familyRouter } from '../route-table.ts';
import { parseRequest } from '../validate.ts';

/** MSAL.NET caps an encoded assertion at 65,536 characters (docs/design.md §10.9); the body limit applies first. */
const MAX_ASSERTION_CHARS = 65_536;
const MAX_ERROR_TEXT_CHARS = 16_384;

const absoluteHttpUrl = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'https:' || u.protocol === 'http:';
    } catch {
      return false;
    }
  }, 'must be an absolute http(s) URL');

const assertionRequestSchema = z
  .object({
    assertion: z.string().trim().min(1, 'paste the compact JWS (header.payload.signature)').max(MAX_ASSERTION_CHARS),
    credential: z.string().min(1).max(64).optional(),
    token_endpoint: absoluteHttpUrl.optional(),
    provider: z.enum(IDP_PROFILE_NAMES).optional(),
    client_id: z.string().min(1).max(256).optional(),
  })
  .strict();

const explainRequestSchema = z
  .object({ error: z.string().trim().min(1, 'paste the error text or JSON body').max(MAX_ERROR_TEXT_CHARS) })
  .strict();

const probeRequestSchema = z.object({ scope: z.string().trim().min(1).max(2048).optional() }).strict().optional();

function requireJson(req: Request): void {
  if (!req.is('application/json')) throw new UnsupportedMediaType('send the request as Content-Type: application/json');
}

function credentialId(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !/^[a-z0-9][a-z0-9\-_.]{0,63}$/.test(id)) throw new InvalidRequest('the credential id must match [a-z0-9][a-z0-9-_.]{0,63}', 'id');
  return id;
}

function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
}

export function diagnosticsRoutes(deps: { diagnostics: DiagnosticService; tokenService: TokenService; jsonBody: RequestHandler[] }): Router {
  const checkAssertion = async (req: Request, res: Response) => {
    requireJson(req);
    const body = parseRequest(assertionRequestSchema, req.body);
    const result = await deps.diagnostics.checkAssertion({
      assertion: body.assertion,
      credential: body.credential,
      tokenEndpoint: body.token_endpoint,
      provider: body.provider,
      clientId: body.client_id,
    });
    noStore(res);
    res.json({ header: result.header, claims: result.claims, signature: result.signature, findings: result.findings, verdict: result.verdict });
  };

  const describeCredential = async (req: Request, res: Response) => {
    const description = await deps.diagnostics.describeCredential(credentialId(req));
    noStore(res);
    res.json(description);
  };

  const probe = async (req: Request, res: Response) => {
    // The body is optional (an empty POST is fine); when there is one it must be JSON.
    const hasBody = Number(req.get('content-length') ?? '0') > 0 || req.get('transfer-encoding') !== undefined;
    if (hasBody && !req.is('application/json')) throw new UnsupportedMediaType('send the request as Content-Type: application/json');
    const body = parseRequest(probeRequestSchema, req.body) ?? {};
    const id = credentialId(req);
    const runtime = deps.tokenService.credential(id);
    const allowed = configuredScopes(runtime);
    // A probe asks only for scopes the credential is configured with: no arbitrary exchanges.
    let scope = allowed[0] ?? '';
    if (body.scope !== undefined) {
      const wanted = runtime.idp.normaliseScope(body.scope);
      if (!allowed.includes(wanted)) {
        throw new InvalidRequest(`scope '${wanted}' is not configured for credential '${id}' (configured: ${allowed.join(', ') || 'none'})`, 'scope');
      }
      scope = wanted;
    }
    const result = await deps.diagnostics.probe(id, scope);
    noStore(res);
    res.json(result);
  };

  const explain = (req: Request, res: Response) => {
    requireJson(req);
    const body = parseRequest(explainRequestSchema, req.body);
    noStore(res);
    res.json(deps.diagnostics.explain(body.error));
  };

  return familyRouter('diagnostics', {
    'POST /v1/diagnostics/assertion': [...deps.jsonBody, checkAssertion],
    'GET /v1/diagnostics/credentials/:id': describeCredential,
    'POST /v1/diagnostics/credentials/:id/probe': [...deps.jsonBody, probe],
    'POST /v1/diagnostics/explain': [...deps.jsonBody, explain],
  });
}
