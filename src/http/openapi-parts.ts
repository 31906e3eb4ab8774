// Small builders for OpenAPI 3.1 fragments, shared by the route table (operations) and openapi.ts
// (components), so neither imports the other.

export const problemResponse = (description: string) => ({ description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } });

export const json = (description: string, schema: object) => ({ description, content: { 'application/json': { schema } } });

/** References to the shared problem responses, one per status. */
export const errors = (...statuses: number[]) => Object.fromEntries(statuses.map((s) => [String(s), { $ref: `#/components/responses/Problem${s}` }]));

/** The caller authentication of the /v1 routes: an API key or a JWT from a configured issuer. */
export const security = [{ callerKey: [] }, { callerJwt: [] }];

export const managedIdentityError = json('an error in the shape Azure SDKs parse', { $ref: '#/components/schemas/ManagedIdentityError' });
