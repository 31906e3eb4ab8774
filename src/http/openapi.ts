// The OpenAPI 3.1 description of every route (DESIGN §5). Tests validate real responses against it.

const problem = {
  type: 'object',
  required: ['type', 'title', 'status', 'code', 'request_id'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer', minimum: 400, maximum: 599 },
    code: { enum: ['invalid_request', 'unauthenticated', 'forbidden', 'unknown_credential', 'rate_limited', 'idp_rejected', 'idp_unavailable', 'internal'] },
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

const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });
const json = (description: string, schema: object) => ({ description, content: { 'application/json': { schema } } });
const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Problem${s}` }]));
const security = [{ callerKey: [] }, { callerJwt: [] }];

export const openApiDocument = {
  openapi: '3.1.0',
  info: {
    title: 'token-broker',
    version: '1',
    description: 'Serves access tokens obtained with certificate client assertions to authenticated internal callers.',
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
              },
            },
          },
        },
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
            required: ['config', 'shutting_down', 'certificates', 'cache'],
            properties: {
              config: { const: 'ok' },
              shutting_down: { type: 'boolean' },
              certificates: {
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
          assertion: { type: 'string', description: 'a compact JWS; never sent anywhere, never logged' },
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
        required: ['credential', 'provider', 'client_id', 'token_endpoint', 'audience', 'certificate', 'assertion', 'findings', 'verdict'],
        properties: {
          credential: { type: 'string' },
          provider: { enum: ['entra', 'oidc'] },
          client_id: { type: 'string' },
          token_endpoint: { type: ['string', 'null'] },
          audience: { type: ['string', 'null'] },
          certificate: { type: 'object' },
          assertion: { type: 'object', required: ['header', 'claims', 'signed'], properties: { signed: { const: false } } },
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
        [429, 'rate limited (Retry-After)'],
        [502, 'the identity provider refused (idp_error, hint)'],
        [503, 'the identity provider is unavailable (Retry-After)'],
      ].map(([status, text]) => [`Problem${status}`, problemResponse(text as string)]),
    ),
  },
  paths: {
    '/v1/token': {
      post: {
        summary: 'Get an access token for a credential',
        security,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TokenRequest' } } } },
        responses: { '200': json('the token (Cache-Control: no-store)', { $ref: '#/components/schemas/TokenResponse' }), ...errors(400, 401, 403, 404, 405, 413, 415, 429, 502, 503) },
      },
    },
    '/v1/credentials': {
      get: { summary: 'Credentials this caller may use', security, responses: { '200': json('the list', { $ref: '#/components/schemas/CredentialList' }), ...errors(401, 429) } },
    },
    '/msi/token': {
      get: {
        summary: 'Managed-identity protocol (App Service flavour, api-version 2019-08-01)',
        security: [{ identityHeader: [] }],
        parameters: [
          { name: 'resource', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'api-version', in: 'query', required: true, schema: { enum: ['2019-08-01', '2017-09-01'] } },
          { name: 'client_id', in: 'query', required: false, schema: { type: 'string' } },
        ],
        responses: {
          '200': json('the token, every value a string', { $ref: '#/components/schemas/ManagedIdentityToken' }),
          default: json('an error in the shape Azure SDKs parse', { $ref: '#/components/schemas/ManagedIdentityError' }),
        },
      },
    },
    '/metadata/identity/oauth2/token': {
      get: {
        summary: 'IMDS flavour for one configured caller (sidecar mode, loopback only; off by default)',
        parameters: [
          { name: 'Metadata', in: 'header', required: true, schema: { const: 'true' } },
          { name: 'resource', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'api-version', in: 'query', required: true, schema: { type: 'string' } },
        ],
        responses: {
          '200': json('the token', { $ref: '#/components/schemas/ManagedIdentityToken' }),
          default: json('an error in the shape Azure SDKs parse', { $ref: '#/components/schemas/ManagedIdentityError' }),
        },
      },
    },
    '/v1/diagnostics/assertion': {
      post: {
        summary: 'Check a pasted client assertion against the IdP rules (never sent anywhere)',
        security,
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/AssertionCheckRequest' } } } },
        responses: { '200': json('findings', { $ref: '#/components/schemas/AssertionCheck' }), ...errors(400, 401, 403, 404, 413, 415, 429) },
      },
    },
    '/v1/diagnostics/credentials/{id}': {
      get: {
        summary: 'Certificate facts, token endpoint and the unsigned assertion the broker would send',
        security,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': json('the view', { $ref: '#/components/schemas/CredentialView' }), ...errors(400, 401, 403, 404, 429) },
      },
    },
    '/v1/diagnostics/credentials/{id}/probe': {
      post: {
        summary: 'One live exchange bypassing the cache; decoded claims or the IdP error explained, never the token',
        security,
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': json('the outcome', { $ref: '#/components/schemas/ProbeResult' }), ...errors(400, 401, 403, 404, 429) },
      },
    },
    '/v1/diagnostics/explain': {
      post: {
        summary: 'Explain a pasted IdP error (AADSTS codes, Keycloak, Okta, Auth0)',
        security,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['error'], properties: { error: {} } } } } },
        responses: { '200': json('the explanation', { $ref: '#/components/schemas/ExplainResult' }), ...errors(400, 401, 403, 413, 415, 429) },
      },
    },
    '/diagnostics': { get: { summary: 'The diagnostics page for engineers', responses: { '200': { description: 'HTML', content: { 'text/html': {} } } } } },
    '/livez': { get: { summary: 'The process is up', responses: { '200': json('up', { $ref: '#/components/schemas/Liveness' }) } } },
    '/readyz': {
      get: {
        summary: 'Config loaded, certificates valid, cache state',
        responses: { '200': json('ready (ok or degraded)', { $ref: '#/components/schemas/Readiness' }), '503': json('not ready', { $ref: '#/components/schemas/Readiness' }) },
      },
    },
    '/metrics': { get: { summary: 'Prometheus metrics', responses: { '200': { description: 'text exposition', content: { 'text/plain': {} } } } } },
    '/openapi.json': { get: { summary: 'This document', responses: { '200': json('OpenAPI 3.1', { type: 'object' }) } } },
  },
} as const;
