// What an IdP's refusal means and what to change, keyed by Entra's AADSTS number or by the OAuth
// `error` (RFC 6749 §5.2). Sources: reference "entra-assertions-and-managed-identity.md" §2 and
// "peer-systems-and-user-pains.md" (failure modes). Microsoft says not to branch on
// error_description, so Entra errors are matched by error_codes only.

export interface IdpErrorExplanation {
  /** Short name, e.g. "audience mismatch". */
  title: string;
  cause: string;
  fix: string;
  /** The claim or field most likely at fault. */
  claim?: string;
}

export const AADSTS_CATALOGUE: Readonly<Record<number, IdpErrorExplanation>> = {
  700023: {
    title: 'client assertion audience does not match the token endpoint',
    cause: 'aud is not the exact, tenant-specific token URL the request was POSTed to (other host alias, /common, v1 vs v2 path, issuer URL, array).',
    fix: 'set aud to the exact token URL you POST to, e.g. https://login.microsoftonline.com/<tenant-id>/oauth2/v2.0/token, as one string',
    claim: 'aud',
  },
  700024: {
    title: 'client assertion outside its valid time range',
    cause: 'exp is in the past or nbf in the future at Entra: clock skew, local time used instead of UTC, or an assertion reused after it expired.',
    fix: 'sync the clock (NTP), build iat/nbf/exp from the UTC epoch in seconds, and sign a new assertion for every request',
    claim: 'exp',
  },
  700027: {
    title: 'client assertion signature or certificate not accepted',
    cause: 'the certificate that signed is not registered on this app registration (wrong app, tenant or cloud, or a renewed certificate not uploaded), the thumbprint header is wrong (hex instead of binary digest, SHA-256 in x5t), or a subject-name/issuer app expects x5c.',
    fix: 'upload the public certificate to the app registration (Certificates & secrets) and compare its thumbprint with the one Entra echoes; if it is registered, try algorithm RS256 with the x5t header, or sendX5c for SNI apps',
    claim: 'x5t#S256',
  },
  700021: {
    title: 'assertion issuer does not match client_id',
    cause: 'iss/sub are not the client_id sent in the form (object ID used instead of the application ID?).',
    fix: 'put the Application (client) ID in iss, sub and client_id',
    claim: 'iss',
  },
  50048: {
    title: 'subject does not match issuer',
    cause: 'sub differs from iss in the assertion.',
    fix: 'make sub and iss both the Application (client) ID',
    claim: 'sub',
  },
  50027: {
    title: 'malformed assertion',
    cause: 'the assertion is not a well-formed JWT for Entra: aud as an array, no x5t/x5t#S256 thumbprint header, or an unsupported alg.',
    fix: 'send a compact JWS with single-string claims and a thumbprint header (x5t#S256 with PS256, or x5t with RS256)',
  },
  50012: {
    title: 'authentication failed (signature)',
    cause: 'legacy wording of a signature or thumbprint failure.',
    fix: 'as for AADSTS700027: check the registered certificate and the thumbprint header',
    claim: 'x5t',
  },
  50013: {
    title: 'signature does not match the certificate',
    cause: 'the certificate was found by thumbprint but the key that signed is another one.',
    fix: 'check that the private key file belongs to the certificate file',
  },
  50032: {
    title: 'weak RSA key',
    cause: 'the RSA key is shorter than 2048 bits.',
    fix: 'issue a new certificate with an RSA key of 2048 bits or more',
  },
  700016: {
    title: 'application not found in the tenant',
    cause: 'the client ID is wrong, the request went to the wrong tenant or cloud, or the app is not provisioned in that tenant.',
    fix: 'check tenantId, clientId (the Application ID, not the object ID) and cloud in the credential',
  },
  90002: {
    title: 'tenant not found',
    cause: 'the tenant GUID or domain does not exist on this cloud.',
    fix: 'use the tenant GUID on the right cloud (check the cloud setting)',
  },
  7000215: {
    title: 'invalid client secret',
    cause: 'a client_secret was sent instead of a client assertion, or it is wrong.',
    fix: 'send a certificate client assertion (client_assertion + client_assertion_type), not a secret',
  },
  7000218: {
    title: 'no client credential in the request',
    cause: 'neither client_assertion nor client_secret was sent, or the app registration is a public client.',
    fix: 'send the client assertion; register the app as a confidential (web) application',
  },
  700025: {
    title: 'public client cannot present a credential',
    cause: 'the app registration is a public client.',
    fix: 'use a confidential (web) app registration for the service principal ("Allow public client flows" off)',
  },
  7000112: {
    title: 'application disabled',
    cause: 'the service principal is disabled in the tenant.',
    fix: 'enable the enterprise application in the tenant',
  },
  500011: {
    title: 'resource not found in the tenant',
    cause: 'the scope or resource names a resource that does not exist in the tenant: a typo (e.g. missing /powerbi/api), another cloud\'s resource URI, or Power BI not provisioned.',
    fix: 'use the exact resource for the cloud, e.g. https://analysis.windows.net/powerbi/api/.default for commercial Power BI',
    claim: 'scope',
  },
  70011: {
    title: 'invalid scope',
    cause: 'a v2 request with a scope that is not <resource>/.default.',
    fix: 'request <resource>/.default, e.g. https://analysis.windows.net/powerbi/api/.default',
    claim: 'scope',
  },
  700022: {
    title: 'scopes for several resources',
    cause: 'one v2 request named scopes of two resources.',
    fix: 'request one resource per token: <resource>/.default',
    claim: 'scope',
  },
  901002: {
    title: 'resource parameter on the v2 endpoint',
    cause: 'resource= was sent to /oauth2/v2.0/token.',
    fix: 'use scope=<resource>/.default on v2, or endpointVersion v1 for resource=',
  },
  70021: {
    title: 'no matching federated identity record',
    cause: 'Entra treated the assertion as a federated credential: iss is not the client ID, so it looked for a federated identity credential.',
    fix: 'for certificate credentials make iss the Application (client) ID; for workload identity fix the federated credential\'s issuer/subject/audience',
    claim: 'iss',
  },
  7000214: {
    title: 'certificate revoked',
    cause: 'the certificate was revoked.',
    fix: 'issue and register a new certificate',
  },
  1000502: {
    title: 'certificate outside its validity period',
    cause: 'the certificate has expired or is not yet valid.',
    fix: 'renew the certificate, register it on the app and mount it for the broker',
  },
  700030: {
    title: 'certificate subject not authorised',
    cause: 'subject name + issuer (SNI) authentication: the subject or issuer is not trusted for this app.',
    fix: 'check the SNI configuration of the app and send x5c (sendX5c: true)',
  },
};

/** Plain OAuth errors (RFC 6749 §5.2) as Keycloak, Okta, Auth0 and oidc-provider return them. */
export const OAUTH_ERROR_CATALOGUE: Readonly<Record<string, IdpErrorExplanation>> = {
  invalid_client: {
    title: 'client authentication failed',
    cause: 'the IdP did not accept the client assertion: unknown client, key not registered for the client, aud not accepted, expired or replayed assertion, or a disallowed alg.',
    fix: 'check that the client exists, that its registered key (JWKS or certificate) is the one the broker signs with, and that aud follows the IdP\'s rule (see the credential\'s preset)',
  },
  unauthorized_client: {
    title: 'client not allowed this grant',
    cause: 'the client is not allowed the client_credentials grant or the private_key_jwt method.',
    fix: 'enable "client credentials" / service accounts and private_key_jwt client authentication for the client at the IdP',
  },
  invalid_scope: {
    title: 'scope not allowed',
    cause: 'the requested scope is unknown or not granted to the client.',
    fix: 'request a scope the client is allowed at the IdP, or fix the credential\'s scopes',
    claim: 'scope',
  },
  invalid_target: {
    title: 'resource or audience not accepted',
    cause: 'the resource indicator or audience is unknown to the IdP.',
    fix: 'check tokenParams (e.g. Auth0 audience) and the resource',
  },
  invalid_request: {
    title: 'malformed token request',
    cause: 'the IdP found the request malformed (missing or duplicate parameter, client_id not matching sub).',
    fix: 'check tokenParams and the client id; the description from the IdP names the parameter',
  },
  invalid_grant: {
    title: 'grant refused',
    cause: 'the IdP refused the grant.',
    fix: 'check that the client credentials grant is enabled for the client',
  },
  unsupported_grant_type: {
    title: 'client credentials grant not supported',
    cause: 'the token endpoint does not support grant_type=client_credentials for this client.',
    fix: 'enable the client credentials grant for the client at the IdP',
  },
  access_denied: {
    title: 'access denied',
    cause: 'the IdP denied the request by policy.',
    fix: 'check the client\'s policies and the audience/API it may call',
  },
};

export function explainAadsts(code: number): IdpErrorExplanation | undefined {
  return AADSTS_CATALOGUE[code];
}

export function explainOAuthError(error: string): IdpErrorExplanation | undefined {
  return Object.hasOwn(OAUTH_ERROR_CATALOGUE, error) ? OAUTH_ERROR_CATALOGUE[error] : undefined;
}
