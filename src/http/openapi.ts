// The OpenAPI 3.1 description of every route: components here, paths from the route table.
// Tests validate real responses against it.
import { problemResponse } from './openapi-parts.ts';
import { ROUTES, type RouteSpec } from './route-table.ts';

const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'request_id'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    code: { enum: ['invalid_request', 'unauthenticated', 'forbidden', 'unknown_credential', 'rate_limited', 'idp_rejected', 'idp_unavailable', 'sign_in_required', 'internal'] },
    credential: { type: 'string', description: 'sign_in_required: the delegated credential a person must sign in for' },
    detail: { type: 'string' },
    request_id: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', required: ['field', 'message'], properties: { field: { type: 'string' }, message: { type: 'string' } } } },
    idp_error: { type: 'string', description: 'the AADSTS code or the OAuth error of the IdP' },
    hint: { type: 'string', description: 'what to change' },
    idp: {
      type: 'object',
      required: ['error', 'http_status'],
      properties: {
        error: { type: 'string' },
        error_description: { type: 'string' },
        error_codes: { type: 'array', items: { type: 'integer' } },
        trace_id: { type: 'string' },
        correlation_id: { type: 'string' },
        http_status: { type: 'integer' },
      },
    },
  },
} as const;

const finding = {
  type: 'object',
  required: ['id', 'severity', 'message'],
  properties: {
    id: { type: 'string' },
    severity: { enum: ['error', 'warning', 'info'] },
    claim: { type: 'string' },
    message: { type: 'string' },
    expected: {},
    actual: {},
    idp_error: { type: 'string' },
    fix: { type: 'string' },
  },
} as const;

/**
 * The table's rows as OpenAPI paths: `:id` becomes `{id}`, and each path parameter is documented
 * from the path itself, so the two cannot disagree.
 */
function pathsFrom(routes: readonly RouteSpec[]): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const names = [...route.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
    const params = names.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } }));
    const given = (route.operation.parameters as unknown[] | undefined) ?? [];
    const operation = params.length > 0 ? { ...route.operation, parameters: [...params, ...given] } : route.operation;
    (paths[route.path.replace(/:(\w+)/g, '{$1}')] ??= {})[route.method.toLowerCase()] = operation;
  }
  return paths;
}

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'token-broker',
    version: '1',
    description: 'Serves access tokens obtained with client credentials (a certificate assertion, a client secret or a federated token) to authenticated internal callers.',
  },
  components: {
    securitySchemes: {
      callerKey: { type: 'http', scheme: 'bearer', description: 'a caller API key (its SHA-256 is configured)' },
      callerJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'a JWT from a configured issuer (e.g. a Kubernetes service account token)' },
      identityHeader: { type: 'apiKey', in: 'header', name: 'X-IDENTITY-HEADER' },
    },
    schemas: {
      Problem: problem,
      Finding: finding,
      TokenRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['credential'],
        properties: {
          credential: { type: 'string' },
          scope: { type: 'string', description: "default: the credential's first scope" },
          resource: { type: 'string', description: 'instead of scope; means resource/.default on Entra' },
          min_ttl_seconds: { type: 'integer', minimum: 0, maximum: 86400, default: 60 },
        },
      },
      TokenResponse: {
        type: 'object',
        required: ['access_token', 'token_type', 'expires_in', 'expires_on', 'scope', 'credential', 'cache'],
        properties: {
          access_token: { type: 'string' },
          token_type: { type: 'string' },
          expires_in: { type: 'integer', minimum: 0 },
          expires_on: { type: 'integer' },
          scope: { type: 'string' },
          credential: { type: 'string' },
          cache: { enum: ['hit', 'miss', 'refreshed'] },
        },
      },
      CredentialList: {
        type: 'object',
        required: ['credentials'],
        properties: {
          credentials: {
            type: 'array',
            items: {
              type: 'object',
              required: ['id', 'provider', 'scopes', 'default_scope'],
              properties: {
                id: { type: 'string' },
                provider: { enum: ['entra', 'oidc'] },
                preset: { type: 'string' },
                endpoint_version: { enum: ['v1', 'v2'] },
                cloud: { type: 'string' },
                scopes: { type: 'array', items: { type: 'string' } },
                default_scope: { type: ['string', 'null'] },
                delegated: { const: true, description: 'a delegated credential: its tokens carry the authority of the person who signed in' },
              },
            },
          },
        },
      },
      SignInStart: {
        oneOf: [
          {
            type: 'object',
            required: ['flow', 'sign_in_url', 'expires_at'],
            properties: { flow: { const: 'authorization_code' }, sign_in_url: { type: 'string', description: 'one-time, for a person\'s browser' }, expires_at: { type: 'string' } },
          },
          {
            type: 'object',
            required: ['flow', 'verification_uri', 'user_code', 'expires_at', 'interval'],
            properties: {
              flow: { const: 'device_code' },
              verification_uri: { type: 'string' },
              verification_uri_complete: { type: 'string' },
              user_code: { type: 'string' },
              expires_at: { type: 'string' },
              interval: { type: 'integer' },
            },
          },
        ],
      },
      SignInStatus: {
        type: 'object',
        required: ['credential', 'state'],
        properties: {
          credential: { type: 'string' },
          state: { enum: ['signed_in', 'sign_in_required', 'pending'] },
          subject: { type: 'string' },
          display_name: { type: 'string' },
          signed_in_at: { type: 'string' },
          last_refresh_at: { type: 'string' },
          refresh_token_expires_at: { type: 'string' },
          scopes_granted: { type: 'string' },
          refreshes: { type: 'integer' },
          rotations: { type: 'integer' },
          reason: { type: 'string' },
          pending: { type: 'object', required: ['flow', 'expires_at', 'started_by'], properties: { flow: { type: 'string' }, expires_at: { type: 'string' }, started_by: { type: 'string' } } },
          hint: { type: 'string' },
        },
        not: { anyOf: [{ required: ['refresh_token'] }, { required: ['access_token'] }, { required: ['id_token'] }] },
      },
      SignInEnded: {
        type: 'object',
        required: ['credential', 'state', 'revoked_at_idp', 'detail'],
        properties: { credential: { type: 'string' }, state: { const: 'sign_in_required' }, revoked_at_idp: { type: 'boolean' }, detail: { type: 'string' } },
      },
      ManagedIdentityToken: {
        type: 'object',
        required: ['access_token', 'expires_on', 'expires_in', 'not_before', 'resource', 'token_type', 'client_id'],
        properties: {
          access_token: { type: 'string' },
          expires_on: { type: 'string', pattern: '^\\d+$' },
          expires_in: { type: 'string', pattern: '^\\d+$' },
          not_before: { type: 'string', pattern: '^\\d+$' },
          resource: { type: 'string' },
          token_type: { type: 'string' },
          client_id: { type: 'string' },
        },
      },
      ManagedIdentityError: {
        type: 'object',
        required: ['error', 'error_description'],
        properties: { error: { type: 'string' }, error_description: { type: 'string' }, request_id: { type: 'string' } },
      },
      Liveness: { type: 'object', required: ['status'], properties: { status: { const: 'ok' } } },
      Readiness: {
        type: 'object',
        required: ['status', 'checks'],
        properties: {
          status: { enum: ['ok', 'degraded', 'not_ready'] },
          checks: {
            type: 'object',
            required: ['config', 'shutting_down', 'certificates', 'client_authentication', 'cache'],
            properties: {
              config: { const: 'ok' },
              shutting_down: { type: 'boolean' },
              client_authentication: {
                type: 'array',
                description: 'every credential, by its kind of client authentication; the other fields are public facts of that kind (never a secret or a token)',
                items: {
                  type: 'object',
                  required: ['credential', 'kind', 'status'],
                  properties: {
                    credential: { type: 'string' },
                    kind: { enum: ['certificate', 'clientSecret', 'federatedToken', 'publicClient'] },
                    status: { enum: ['ok', 'expiring_soon', 'expired', 'unavailable'] },
                    reload_problem: { type: 'string', description: 'the file changed but is not usable: the material read before is kept' },
                    problem: { type: 'string', description: 'why nothing can be sent (unavailable)' },
                    file: { type: 'string' },
                    not_after: { type: 'string', description: 'certificate' },
                    days_left: { type: 'integer', description: 'certificate' },
                    thumbprint: { type: 'string', description: 'certificate (SHA-1 hex)' },
                    modified_at: { type: 'string', description: 'client secret: when its file last changed' },
                    age_seconds: { type: 'integer', minimum: 0, description: 'client secret: seconds since its file last changed' },
                    expires_at: { type: 'string', description: 'federated token: its exp' },
                    seconds_left: { type: 'integer', description: 'federated token' },
                    iss: { type: 'string', description: 'federated token' },
                    sub: { type: 'string', description: 'federated token' },
                  },
                },
              },
              certificates: {
                description: 'certificate credentials only, as in earlier releases',
                type: 'array',
                items: {
                  type: 'object',
                  required: ['credential', 'status', 'not_after', 'days_left', 'thumbprint'],
                  properties: {
                    credential: { type: 'string' },
                    status: { enum: ['ok', 'expiring_soon', 'expired'] },
                    not_after: { type: 'string' },
                    days_left: { type: 'integer' },
                    thumbprint: { type: 'string' },
                    reload_problem: { type: 'string' },
                  },
                },
              },
              cache: {
                type: 'object',
                required: ['kind', 'status'],
                properties: { kind: { enum: ['memory', 'redis'] }, status: { enum: ['ok', 'degraded'] }, detail: { type: 'string' } },
              },
            },
          },
        },
      },
      AssertionCheckRequest: {
        type: 'object',
        required: ['assertion'],
        properties: {
          assertion: { type: 'string', description: 'a compact JWS: a client assertion, or a federated token (recognised by aud api://AzureADTokenExchange, or by a federated credential named in credential); never sent anywhere, never logged' },
          credential: { type: 'string' },
          token_endpoint: { type: 'string' },
          provider: { enum: ['entra', 'keycloak', 'okta', 'auth0', 'generic'] },
          client_id: { type: 'string' },
        },
      },
      AssertionCheck: {
        type: 'object',
        required: ['header', 'claims', 'signature', 'findings', 'verdict'],
        properties: {
          header: { type: ['object', 'null'] },
          claims: { type: ['object', 'null'] },
          signature: {
            type: 'object',
            required: ['checked', 'valid'],
            properties: { checked: { type: 'boolean' }, valid: { type: ['boolean', 'null'] }, certificate: { type: 'object' } },
          },
          findings: { type: 'array', items: { $ref: '#/components/schemas/Finding' } },
          verdict: { enum: ['ok', 'will_fail'] },
        },
      },
      CredentialView: {
        type: 'object',
        required: ['credential', 'provider', 'client_id', 'token_endpoint', 'audience', 'client_authentication', 'certificate', 'assertion', 'delegated', 'findings', 'verdict'],
        properties: {
          credential: { type: 'string' },
          provider: { enum: ['entra', 'oidc'] },
          preset: { type: 'string' },
          endpoint_version: { enum: ['v1', 'v2'] },
          cloud: { type: 'string' },
          tenant_id: { type: 'string' },
          client_id: { type: 'string' },
          token_endpoint: { type: ['string', 'null'] },
          audience: { type: ['string', 'null'] },
          client_authentication: {
            type: 'object',
            required: ['kind'],
            description: 'how the credential authenticates: where the material lives and its public facts, never a secret, a token or a key',
            properties: {
              kind: { enum: ['certificate', 'clientSecret', 'federatedToken', 'publicClient'] },
              reload_problem: { type: 'string' },
            },
            not: { anyOf: [{ required: ['secret'] }, { required: ['value'] }, { required: ['token'] }, { required: ['client_secret'] }, { required: ['client_assertion'] }] },
          },
          delegated: {
            description: 'delegated credentials: the grant as this replica last read it (state, subject, scopes granted, last refresh); never a token. Else null',
            oneOf: [
              { type: 'null' },
              {
                type: 'object',
                required: ['state'],
                properties: { state: { enum: ['signed_in', 'sign_in_required'] }, subject: { type: 'string' }, scopes_granted: { type: 'string' }, last_refresh_at: { type: 'string' } },
                not: { anyOf: [{ required: ['refresh_token'] }, { required: ['access_token'] }, { required: ['id_token'] }] },
              },
            ],
          },
          certificate: {
            type: ['object', 'null'],
            description: 'the signing certificate (certificate credentials), else null',
            required: ['subject', 'issuer', 'serial', 'not_before', 'not_after', 'sha1', 'sha256', 'x5t', 'x5t#S256', 'chain'],
          },
          assertion: {
            type: ['object', 'null'],
            description: 'what the next exchange sends as client_assertion, decoded and without its signature: the assertion the broker would sign, or the federated token in its file; null for a client secret',
            required: ['header', 'claims', 'signed', 'signed_by'],
            properties: {
              header: { type: 'object' },
              claims: { type: ['object', 'null'], description: 'null when they cannot be known (no audience; a federated token file that is unusable)' },
              signed: { const: false },
              signed_by: { enum: ['broker', 'external issuer'] },
            },
          },
          findings: { type: 'array', items: { $ref: '#/components/schemas/Finding' } },
          verdict: { enum: ['ok', 'will_fail'] },
        },
      },
      ProbeResult: {
        type: 'object',
        required: ['credential', 'scope', 'outcome', 'findings'],
        properties: {
          credential: { type: 'string' },
          scope: { type: 'string' },
          outcome: { enum: ['ok', 'rejected', 'unavailable'] },
          duration_ms: { type: 'number' },
          token: { type: 'object', not: { required: ['access_token'] }, description: 'decoded claims only, never the token' },
          findings: { type: 'array', items: { $ref: '#/components/schemas/Finding' } },
        },
      },
      ExplainResult: {
        type: 'object',
        required: ['recognized', 'parsed', 'explanations'],
        properties: {
          recognized: { type: 'boolean' },
          source: { type: 'string' },
          parsed: { type: 'object' },
          explanations: {
            type: 'array',
            items: { type: 'object', required: ['code', 'title', 'cause', 'fix'], properties: { code: { type: 'string' }, title: { type: 'string' }, cause: { type: 'string' }, fix: { type: 'string' } } },
          },
          fix: { type: 'string' },
        },
      },
    },
    responses: Object.fromEntries(
      [
        [400, 'invalid request (bad JSON, wrong field types: errors names each field)'],
        [401, 'missing or wrong caller credential'],
        [403, 'not allowed for this caller'],
        [404, 'unknown credential or route'],
        [405, 'method not allowed (Allow header)'],
        [413, 'body too large'],
        [415, 'not UTF-8 JSON'],
        [409, 'sign_in_required: a delegated credential has no usable grant; hint says who starts a sign-in and how'],
        [429, 'rate limited (Retry-After)'],
        [502, 'the identity provider refused (idp_error, hint)'],
        [503, 'the identity provider is unavailable (Retry-After)'],
      ].map(([status, text]) => [`Problem${status}`, problemResponse(text as string)]),
    ),
  },
  paths: pathsFrom(ROUTES),
} as const;
