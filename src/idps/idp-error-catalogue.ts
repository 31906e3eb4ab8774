// What an IdP's refusal means and what to change, keyed by Entra's AADSTS number, by the OAuth
// `error` (RFC 6749 §5.2), by Keycloak's client-authentication error strings, by Okta's errorCode
// and by a few well-known Okta / Auth0 / Power BI messages, for every way a client authenticates: a
// certificate assertion, a client secret or a federated token (docs/design.md §9.1). Sources: docs/design.md §11
// (AADSTS codes, failure modes), §10.10 (Power BI) and §13 (Keycloak, Okta, Auth0). Microsoft says not to branch on error_description, so Entra errors are matched by
// error_codes (or the AADSTS number in the text) first; an entry's `messages` are used only for text
// pasted without any AADSTS code (a log line that lost its prefix, a forum quote).

export interface IdpErrorExplanation {
  /** Short name, e.g. "audience mismatch". */
  title: string;
  cause: string;
  fix: string;
  /** The claim or field most likely at fault. */
  claim?: string;
  /**
   * The IdP's own wording (or a distinctive part of it), recognised in pasted text without its code;
   * compared with {@link normalizeMessage} on both sides.
   */
  messages?: readonly string[];
}

/**
 * Lower case, apostrophes dropped and every other run of punctuation or white space made one space,
 * so "doesn't  match 'client_id'" and "doesnt match client id" compare equal.
 */
export function normalizeMessage(text: string): string {
  return text
    .toLowerCase()
    .replace(/['\u2019`]/g, '')
    .replace(/[^a-z0-9]+/g, ' ')
    .trim();
}

/** Whether `text` (already normalised) holds one of the messages as whole words. */
export function containsMessage(normalizedText: string, messages: readonly string[] | undefined): boolean {
  if (!messages) return false;
  const haystack = ` ${normalizedText} `;
  return messages.some((m) => haystack.includes(` ${normalizeMessage(m)} `));
}

export const AADSTS_CATALOGUE: Readonly<Record<number, IdpErrorExplanation>> = {
  // Delegated sign-ins and refresh tokens (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
  50011: {
    messages: ['The redirect URI specified in the request does not match the redirect URIs configured for the application'],
    title: 'reply URL mismatch',
    cause: 'the redirect_uri of the sign-in is not one of the redirect URIs registered on the app registration (scheme, host, port, path and case must match exactly).',
    fix: 'add signIn.redirectUri exactly as configured to the app registration (Authentication → Web or Mobile and desktop platform → Redirect URIs)',
    claim: 'redirect_uri',
  },
  65001: {
    messages: ['The user or administrator has not consented to use the application'],
    title: 'consent missing',
    cause: 'the person (or an administrator for the tenant) has not consented to the delegated permissions the sign-in asks for.',
    fix: 'grant admin consent for the API permissions of the app registration, or let the person consent at sign-in',
    claim: 'scope',
  },
  50105: {
    messages: ['has not been assigned to a role for the application'],
    title: 'person not assigned to the application',
    cause: 'the enterprise application requires assignment and this person (or their group) is not assigned.',
    fix: 'assign the person under Enterprise applications → the app → Users and groups, or sign in as an assigned person',
  },
  700082: {
    messages: ['The refresh token has expired due to inactivity'],
    title: 'refresh token expired (inactivity)',
    cause: 'the refresh token was not used for 90 days.',
    fix: 'sign in again; keep signIn.keepAliveSeconds well below 90 days (the default refreshes every 20 minutes)',
  },
  50173: {
    messages: ['The provided grant has expired due to it being revoked'],
    title: 'grant revoked',
    cause: 'the grant was revoked: a password change or reset, sessions revoked by an administrator, or consent withdrawn.',
    fix: 'the person signs in again (POST /v1/credentials/{id}/sign-in)',
  },
  700023: {
    messages: ['Client assertion audience claim does not match Realm issuer'],
    title: 'client assertion audience does not match the token endpoint',
    cause: 'aud is not the exact, tenant-specific token URL the request was POSTed to (other host alias, /common, v1 vs v2 path, issuer URL, array).',
    fix: 'set aud to the exact token URL you POST to, e.g. https://login.microsoftonline.com/<tenant-id>/oauth2/v2.0/token, as one string',
    claim: 'aud',
  },
  700024: {
    messages: ['Client assertion is not within its valid time range'],
    title: 'client assertion outside its valid time range',
    cause:
      'exp is in the past or nbf in the future at Entra: clock skew, local time used instead of UTC, or an assertion reused after it expired. ' +
      'With a federated token: the token in the file has expired because nothing rewrote it (read once at startup, copied into a Secret, or a projected volume that stopped being refreshed; Azure/azure-workload-identity#693).',
    fix:
      'certificate: sync the clock (NTP), build iat/nbf/exp from the UTC epoch in seconds, and sign a new assertion for every request; ' +
      'federated token: mount it as a projected serviceAccountToken volume (the kubelet rewrites it at 80 % of its lifetime) and point federatedToken.file at it (the broker re-reads it for every exchange)',
    claim: 'exp',
  },
  700027: {
    messages: ['Client assertion contains an invalid signature', 'The certificate with identifier used to sign the client assertion is not registered on application', 'Client assertion failed signature validation'],
    title: 'client assertion signature or certificate not accepted',
    cause: 'the certificate that signed is not registered on this app registration (wrong app, tenant or cloud, or a renewed certificate not uploaded), the thumbprint header is wrong (hex instead of binary digest, SHA-256 in x5t), or a subject-name/issuer app expects x5c.',
    fix: 'upload the public certificate to the app registration (Certificates & secrets) and compare its thumbprint with the one Entra echoes; if it is registered, try algorithm RS256 with the x5t header, or sendX5c for SNI apps',
    claim: 'x5t#S256',
  },
  700021: {
    messages: ['Client assertion application identifier doesn\'t match \'client_id\' parameter'],
    title: 'assertion issuer does not match client_id',
    cause: 'iss/sub are not the client_id sent in the form (object ID used instead of the application ID?).',
    fix: 'put the Application (client) ID in iss, sub and client_id',
    claim: 'iss',
  },
  50048: {
    messages: ['SubjectMismatchesIssuer', 'Subject mismatches Issuer claim in the client assertion'],
    title: 'subject does not match issuer',
    cause: 'sub differs from iss in the assertion.',
    fix: 'make sub and iss both the Application (client) ID',
    claim: 'sub',
  },
  50027: {
    messages: ['InvalidJwtToken', 'JWT token is invalid or malformed', 'No certificate thumbprint specified in token header'],
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
    messages: ['provided signature value did not match'],
    title: 'signature does not match the certificate',
    cause: 'the certificate was found by thumbprint but the key that signed is another one.',
    fix: 'check that the private key file belongs to the certificate file',
  },
  50032: {
    messages: ['WeakRsaKey'],
    title: 'weak RSA key',
    cause: 'the RSA key is shorter than 2048 bits.',
    fix: 'issue a new certificate with an RSA key of 2048 bits or more',
  },
  700016: {
    messages: ['UnauthorizedClient_DoesNotMatchRequest'],
    title: 'application not found in the tenant',
    cause: 'the client ID is wrong, the request went to the wrong tenant or cloud, or the app is not provisioned in that tenant.',
    fix: 'check tenantId, clientId (the Application ID, not the object ID) and cloud in the credential',
  },
  90002: {
    messages: ['InvalidTenantName'],
    title: 'tenant not found',
    cause: 'the tenant GUID or domain does not exist on this cloud.',
    fix: 'use the tenant GUID on the right cloud (check the cloud setting)',
  },
  7000215: {
    messages: ['Invalid client secret is provided', 'Invalid client secret provided', 'InvalidClientSecretProvided'],
    title: 'invalid client secret',
    cause:
      'the client_secret sent is not a current secret of this app: most often the secret ID (a GUID) was copied instead of its value, or a secret of another app (or tenant) is in the file. ' +
      'Entra shows a secret\'s value once, in the Value column when it is created.',
    fix:
      'in the app registration (Certificates & secrets → Client secrets) create a new secret, copy the Value column (not the Secret ID) at once and write it alone into the secret file (clientSecret.file); ' +
      'a certificate credential never sends a secret',
    claim: 'client_secret',
  },
  7000222: {
    messages: ['InvalidClientSecretExpiredKeysProvided', 'Visit the Azure portal to create new keys for your app'],
    title: 'client secret expired',
    cause: 'the secret in the file has passed its expiry date at Entra (secrets are created with one, at most two years ahead).',
    fix:
      'create a new secret on the app registration, write its value to clientSecret.file, and keep the old one as clientSecret.previousFile until Entra accepts the new one everywhere; ' +
      'then delete the expired secret from the app',
    claim: 'client_secret',
  },
  7000218: {
    messages: ['The request body must contain the following parameter: \'client_assertion\' or \'client_secret\''],
    title: 'no client credential in the request',
    cause: 'neither client_assertion nor client_secret was sent, or the app registration is a public client.',
    fix: 'send the client assertion; register the app as a confidential (web) application',
  },
  700025: {
    messages: ['InvalidClientPublicClientWithCredential', 'Client is public so neither \'client_assertion\' nor \'client_secret\' should be presented'],
    title: 'public client cannot present a credential',
    cause: 'the app registration is a public client.',
    fix: 'use a confidential (web) app registration for the service principal ("Allow public client flows" off)',
  },
  7000112: {
    messages: ['UnauthorizedClientApplicationDisabled'],
    title: 'application disabled',
    cause: 'the service principal is disabled in the tenant.',
    fix: 'enable the enterprise application in the tenant',
  },
  500011: {
    messages: ['InvalidResourceServicePrincipalNotFound'],
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
    messages: ['InvalidMultipleResourcesScope'],
    title: 'scopes for several resources',
    cause: 'one v2 request named scopes of two resources.',
    fix: 'request one resource per token: <resource>/.default',
    claim: 'scope',
  },
  901002: {
    messages: ['The \'resource\' request parameter isn\'t supported', 'The \'resource\' request parameter is not supported'],
    title: 'resource parameter on the v2 endpoint',
    cause: 'resource= was sent to /oauth2/v2.0/token.',
    fix: 'use scope=<resource>/.default on v2, or endpointVersion v1 for resource=',
  },
  70021: {
    messages: ['No matching federated identity record found for presented assertion. Assertion Issuer'],
    title: 'no matching federated identity record',
    cause:
      'Entra treated the assertion as a federated token (its iss is not the client ID) and no federated identity credential of the app matches its issuer, subject and audience together; ' +
      'also answered for a few minutes after a federated credential is added, until it has propagated.',
    fix:
      'federated token: add a federated credential to the app with exactly the token\'s issuer (the cluster\'s OIDC issuer URL), subject (system:serviceaccount:<namespace>:<service account>) and audience api://AzureADTokenExchange, then retry after a few minutes; ' +
      'certificate credential: make iss the Application (client) ID',
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
    messages: ['subject name in certificate isn\'t authorized', 'subject name in certificate is not authorized'],
    title: 'certificate subject not authorised',
    cause: 'subject name + issuer (SNI) authentication: the subject or issuer is not trusted for this app.',
    fix: 'check the SNI configuration of the app and send x5c (sendX5c: true)',
  },
  5002738: {
    messages: ['is not a supported signature algorithm'],
    title: 'signature algorithm not supported',
    cause: "Entra accepts RS256 and PS256 client assertions only (\"'ES256' is not a supported signature algorithm\").",
    fix: 'use an RSA certificate and sign with PS256 (+ x5t#S256) or RS256 (+ x5t)',
    claim: 'alg',
  },
  70002: {
    messages: ['Error validating credentials'],
    title: 'error validating credentials (wrapper)',
    cause: 'ADAL-era wrapper around the real reason, which follows as a second AADSTS code (e.g. "AADSTS70002: Error validating credentials. AADSTS50012: …").',
    fix: 'look at the inner AADSTS code',
  },
  700211: {
    messages: ['No matching federated identity record found for presented assertion issuer'],
    title: 'no matching federated identity record for the issuer',
    cause: 'the token was treated as a federated (workload identity) token and no federated credential of the app has its iss: compared exactly (case, a trailing slash, white space all count).',
    fix:
      'set the federated credential\'s issuer to the token\'s iss exactly: the cluster\'s OIDC issuer URL (AKS: az aks show --query oidcIssuerProfile.issuerUrl, with its trailing slash); ' +
      'certificate credential: make iss the Application (client) ID',
    claim: 'iss',
  },
  700212: {
    messages: ['No matching federated identity record found for presented assertion audience'],
    title: 'no matching federated identity record for the audience',
    cause: 'the federated token\'s aud is not the audience of the app\'s federated credential (api://AzureADTokenExchange unless changed); a token for another audience (the default service-account token is for the API server) is refused.',
    fix: 'project the token with audience api://AzureADTokenExchange (serviceAccountToken volume) and keep that value as the federated credential\'s one audience',
    claim: 'aud',
  },
  700213: {
    messages: ['No matching federated identity record found for presented assertion subject'],
    title: 'no matching federated identity record for the subject',
    cause: 'a federated credential exists for the issuer, but not for this sub (matched exactly and case-sensitively).',
    fix:
      'set the federated credential\'s subject to the token\'s sub exactly: system:serviceaccount:<namespace>:<service account> for a Kubernetes service account; ' +
      'certificate credential: make sub the Application (client) ID',
    claim: 'sub',
  },
  7000272: {
    messages: ['used to sign the federated credential could not be found in the metadata of identity provider'],
    title: 'federated token signed with a key the issuer does not publish',
    cause: 'the token\'s kid is not among the keys Entra fetched from the issuer\'s jwks_uri: the issuer rotated its signing key and publishes a stale JWKS, or the token comes from another issuer.',
    fix: 'make the issuer publish its current signing keys at {iss}/.well-known/openid-configuration (jwks_uri); AKS and EKS do this themselves',
    claim: 'kid',
  },
  501661: {
    messages: ['Request to External OIDC endpoint failed'],
    title: 'Entra could not fetch the issuer\'s OIDC metadata',
    cause: 'to check a federated token Entra fetches {iss}/.well-known/openid-configuration and its jwks_uri over the internet; the issuer is private, down, or serves them elsewhere.',
    fix: 'serve the issuer\'s discovery document and JWKS publicly over https (a private cluster needs a public OIDC issuer, e.g. AKS --enable-oidc-issuer)',
    claim: 'iss',
  },
  7000277: {
    title: 'certificate outside its validity window',
    cause: 'the signing certificate is expired or revoked (Id.Web retries with the next certificate on this code).',
    fix: 'renew the certificate, register it on the app and mount it for the broker',
  },
  1002012: {
    title: 'scope without /.default',
    cause: 'client credential flows need a scope of the form <resource>/.default.',
    fix: 'request <resource>/.default, e.g. https://analysis.windows.net/powerbi/api/.default',
    claim: 'scope',
  },
  900144: {
    title: 'required parameter missing',
    cause: 'the token request lacks a parameter (grant_type, client_id, client_assertion_type, scope or resource); a JSON body instead of a form also looks like this.',
    fix: 'POST application/x-www-form-urlencoded with grant_type=client_credentials, client_id, client_assertion_type, client_assertion and scope (v2) or resource (v1)',
  },
  70003: {
    title: 'unsupported grant type',
    cause: 'the grant_type is not client_credentials (or the app may not use it).',
    fix: 'send grant_type=client_credentials',
  },
};

/** The IdP families a bare OAuth error gets a note for. */
export type IdpFamily = 'entra' | 'keycloak' | 'okta' | 'auth0';

export interface OAuthErrorExplanation extends IdpErrorExplanation {
  /** What the same error usually means at each IdP family, where that is known. */
  perIdp?: Readonly<Partial<Record<IdpFamily, { cause: string; fix: string }>>>;
}

/**
 * Plain OAuth errors (RFC 6749 §5.2) as Entra, Keycloak, Okta, Auth0 and oidc-provider return them,
 * with a note per IdP family. Assertion rules per IdP: Entra
 * https://learn.microsoft.com/entra/identity-platform/certificate-credentials, Okta
 * https://developer.okta.com/docs/guides/implement-oauth-for-okta-serviceapp/create-sign-jwt/, Auth0
 * https://auth0.com/docs/get-started/authentication-and-authorization-flow/authenticate-with-private-key-jwt.
 */
export const OAUTH_ERROR_CATALOGUE: Readonly<Record<string, OAuthErrorExplanation>> = {
  invalid_client: {
    title: 'client authentication failed',
    cause:
      'the IdP did not accept how the client authenticated: unknown client; with a certificate, a key not registered for the client, aud not accepted, an expired or replayed assertion, or a disallowed alg; ' +
      'with a client secret, a wrong or expired secret, or a method (basic / post) the client is not registered for.',
    fix:
      'check that the client exists; certificate: that its registered key (JWKS or certificate) is the one the broker signs with and aud follows the IdP\'s rule (see the credential\'s preset); ' +
      'client secret: that the secret file holds the current secret value, alone on one line',
    perIdp: {
      entra: {
        cause: 'Entra says why in error_codes and as an AADSTS number in error_description (700027 certificate not registered, 700023 aud, 700024 time window, 700021 iss or client_id, 700016 application not in the tenant, 7000215 wrong secret, 7000222 expired secret, 70021/700211/700212/700213 no matching federated credential).',
        fix: 'paste the whole answer (the JSON body, or error_description with its AADSTS number) to have that code explained',
      },
      keycloak: {
        cause:
          'Keycloak hides the reason ("Invalid client or Invalid client credentials"); its server log has it as the reason of a CLIENT_LOGIN_ERROR event, e.g. "Invalid token audience" or "Token reuse detected" for an assertion, ' +
          'error=invalid_client_credentials for a wrong secret (older versions: unauthorized_client "Invalid client secret").',
        fix: 'find the CLIENT_LOGIN_ERROR event of this request in the Keycloak log and paste its reason; for a secret, compare the file with the client\'s Credentials tab (Client Secret), regenerated there if unsure',
      },
      okta: {
        cause:
          'Okta wants aud = the full token URL called (https://{org}/oauth2/v1/token), iss = sub = client_id, exp at most 1 h ahead, and the public key registered on the service app; error_description says which failed. ' +
          'A wrong secret reads "The client secret supplied for a confidential client is invalid."',
        fix: 'set aud to exactly the token URL you POST to, register the broker\'s public key on the app, and paste the error_description; for a secret, copy the app\'s current Client Secret into the file',
      },
      auth0: {
        cause:
          'Auth0 wants aud = the tenant URL or custom domain with a trailing slash (https://{tenant}.auth0.com/), a lifetime of at most 5 minutes, a unique jti and an alg that matches the registered credential; Private Key JWT is an Enterprise-plan feature. ' +
          'A wrong client id or secret comes back as access_denied "Unauthorized" (401), not invalid_client.',
        fix: 'set aud to the tenant URL with its trailing slash, keep assertions short (the auth0 preset signs for 60 s) and register the broker\'s public key as the application\'s credential; for a secret, copy the application\'s Client Secret (Settings) into the file',
      },
    },
  },
  unauthorized_client: {
    title: 'client not allowed this grant',
    cause: 'the client is not allowed the client_credentials grant or the private_key_jwt method.',
    fix: 'enable "client credentials" / service accounts and private_key_jwt client authentication for the client at the IdP',
    perIdp: {
      entra: {
        cause: 'Entra sends it with AADSTS700016 (UnauthorizedClient_DoesNotMatchRequest): the application was not found in the tenant the request went to.',
        fix: 'check tenantId, clientId (the Application ID, not the object ID) and cloud in the credential',
      },
      keycloak: {
        cause: 'the client has no service account (client credentials grant off) or its client authenticator is not "Signed JWT".',
        fix: 'on the client, enable "Service accounts roles" and set Credentials → Client Authenticator to "Signed JWT"',
      },
      okta: {
        cause: 'the app may not use the Client Credentials grant, or its client authentication is not "Public key / Private key".',
        fix: 'allow the Client Credentials grant on the app and choose Public key / Private key client authentication with the broker\'s public key',
      },
      auth0: {
        cause: 'the application may not use the client_credentials grant ("Grant type \'client_credentials\' not allowed for the client").',
        fix: 'enable "Client Credentials" under the application\'s Advanced Settings → Grant Types (a Machine to Machine application has it)',
      },
    },
  },
  invalid_scope: {
    title: 'scope not allowed',
    cause: 'the requested scope is unknown or not granted to the client.',
    fix: 'request a scope the client is allowed at the IdP, or fix the credential\'s scopes',
    claim: 'scope',
    perIdp: {
      entra: {
        cause: 'a client credentials request to Entra takes one scope of the form <resource>/.default (AADSTS70011, AADSTS1002012).',
        fix: 'request <resource>/.default, e.g. https://analysis.windows.net/powerbi/api/.default',
      },
      keycloak: {
        cause: 'the scope is not a client scope assigned to the client (as Default or Optional).',
        fix: 'assign the client scope to the client (Client scopes tab) or drop it from the credential\'s scopes',
      },
      okta: {
        cause: 'the scope does not exist on this authorization server, or an okta.* scope is not granted to the app.',
        fix: 'add the scope to the authorization server, or grant the okta.* scope on the app\'s Okta API Scopes tab, and request it',
      },
      auth0: {
        cause: 'the scope is not among the permissions granted to the application on the API named in audience.',
        fix: 'grant the scope to the application under APIs → Machine to Machine Applications',
      },
    },
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
    perIdp: {
      entra: {
        cause: 'Entra adds the reason as an AADSTS number: 900144 (a parameter missing, or a JSON body instead of a form) or 901002 (resource= sent to the v2 endpoint).',
        fix: 'paste the whole answer to have that code explained',
      },
    },
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
    perIdp: {
      auth0: {
        cause: 'the audience names no API of this tenant ("Service not enabled within domain"), or the application has no client grant for that API.',
        fix: 'set tokenParams.audience to the API Identifier (Applications → APIs) and authorise the application on that API',
      },
    },
  },
};

/**
 * A refusal recognised by its text: Keycloak's error strings, Okta's errorCode or errorSummary, known
 * Okta / Auth0 / Power BI messages. It matches when `match` finds its code or the text holds one of
 * its `messages` (compared normalised, so case, spacing and punctuation do not matter).
 */
export interface TextPatternEntry extends IdpErrorExplanation {
  idp: 'keycloak' | 'okta' | 'auth0' | 'powerbi';
  /** The code to quote: the Keycloak string itself, Okta's E0000…, or a short name. */
  code: string;
  /** The code itself in the text (Okta's E0000…). */
  match?: RegExp;
}

/**
 * Keycloak's client-JWT validator answers with these strings (exact wording from its source,
 * docs/design.md §13.1); depending on the version they appear in error_description or only in
 * the server log (event CLIENT_LOGIN_ERROR). Order: most specific first.
 */
const KEYCLOAK_ENTRIES: TextPatternEntry[] = [
  { idp: 'keycloak', code: 'Token exp claim is required', messages: ['Token exp claim is required'], title: 'exp missing', cause: 'the assertion has no exp.', fix: 'set exp = iat + 60..600', claim: 'exp' },
  { idp: 'keycloak', code: 'Token was issued too far in the past to be used now', messages: ['issued too far in the past'], title: 'assertion too old', cause: 'more than the client\'s "Max expiration of signed JWT" (default 60 s) passed since iat: an assertion signed earlier and sent late, or a clock behind.', fix: 'sign the assertion right before each request (the broker does); check the clock (NTP); or raise the client setting', claim: 'iat' },
  { idp: 'keycloak', code: 'Token expiration is too far in the future and iat claim not present in token', messages: ['iat claim not present in token'], title: 'long-lived assertion without iat', cause: 'without iat, Keycloak allows exp at most the client\'s max age (default 60 s) ahead.', fix: 'send iat = now', claim: 'iat' },
  { idp: 'keycloak', code: 'Token was issued in the future', messages: ['Token was issued in the future'], title: 'iat in the future', cause: 'iat is more than 15 s ahead of Keycloak\'s clock: a clock ahead, or local time used instead of UTC.', fix: 'sync the clock (NTP) and build iat from the UTC epoch', claim: 'iat' },
  { idp: 'keycloak', code: 'Token is not active', messages: ['Token is not active'], title: 'assertion outside its validity window', cause: 'exp is past or nbf is ahead by more than Keycloak\'s 15 s skew (before 26.4 nbf had no skew at all, keycloak#8966).', fix: 'nbf = iat = now (or a few seconds earlier), exp = now + 60..600, from an NTP-synced UTC clock', claim: 'exp' },
  { idp: 'keycloak', code: 'Token jti claim is required', messages: ['Token jti claim is required'], title: 'jti missing', cause: 'Keycloak requires a jti to detect replays.', fix: 'add jti: a fresh UUID per assertion', claim: 'jti' },
  { idp: 'keycloak', code: 'Token reuse detected', messages: ['Token reuse detected'], title: 'assertion replayed', cause: 'the same jti was already used: an assertion cached and sent twice, or a constant jti.', fix: 'sign a new assertion with a new jti for every token request', claim: 'jti' },
  { idp: 'keycloak', code: 'Multiple audiences not allowed', messages: ['Multiple audiences not allowed'], title: 'several audiences', cause: 'aud holds more than one value; Keycloak refuses that by default since 26.2.', fix: 'send aud as one string: the realm issuer (or the token endpoint)', claim: 'aud' },
  { idp: 'keycloak', code: 'Invalid token audience', messages: ['Invalid token audience'], title: 'audience not accepted', cause: 'aud is none of the realm issuer, token, introspection, PAR or CIBA endpoint of this realm (wrong realm, wrong host, trailing slash).', fix: 'set aud to the realm issuer, e.g. https://idp.example/realms/<realm>', claim: 'aud' },
  { idp: 'keycloak', code: 'Invalid signature algorithm', messages: ['Invalid signature algorithm'], title: 'algorithm refused', cause: 'alg is none or symmetric, or differs from the client\'s configured "Signature algorithm".', fix: 'sign with the algorithm set on the client (Credentials tab), e.g. RS256', claim: 'alg' },
  { idp: 'keycloak', code: 'Unable to load public key', messages: ['Unable to load public key'], title: 'no key for the assertion', cause: 'the client has no certificate / JWKS configured, the JWKS URL is unreachable, or no key has the assertion\'s kid (a rotated key with an unchanged kid is not refetched, keycloak#14263).', fix: 'import the broker\'s certificate on the client (Keys tab) or fix the JWKS URL; send the kid registered there', claim: 'kid' },
  { idp: 'keycloak', code: 'client_id parameter does not match sub claim', messages: ['client_id parameter does not match sub claim', 'client_id parameter does not match authenticated client'], title: 'client_id differs from sub', cause: 'the client_id form field is not the assertion\'s sub.', fix: 'send the same client id in client_id, iss and sub', claim: 'sub' },
  { idp: 'keycloak', code: 'Token sub claim is required', messages: ['Token sub claim is required'], title: 'sub missing', cause: 'Keycloak finds the client by sub.', fix: 'set sub (and iss) to the client id', claim: 'sub' },
  { idp: 'keycloak', code: 'Invalid client or Invalid client credentials', messages: ['Invalid client or Invalid client credentials'], title: 'client authentication failed (reason hidden)', cause: 'Keycloak does not say why in its answer; the reason is in the server log (event CLIENT_LOGIN_ERROR). With a client secret it is usually a wrong secret (error=invalid_client_credentials).', fix: 'find the CLIENT_LOGIN_ERROR event of this request in the Keycloak log and paste its reason here; for a secret, compare the file with the client\'s Credentials tab (Client Secret)' },
  // Keycloak before the wording above (unauthorized_client "Invalid client secret").
  // Matched on its own: Entra's "Invalid client secret provided" (AADSTS7000215) starts with the same words.
  { idp: 'keycloak', code: 'Invalid client secret', match: /\bInvalid client secret\b(?!\s+(?:is\s+)?provided)/i, title: 'wrong client secret', cause: 'the secret sent is not the client\'s current secret (regenerated in the admin console, or from another client or realm).', fix: 'copy the Client Secret from the client\'s Credentials tab into the secret file, alone on one line', claim: 'client_secret' },
];

/**
 * Okta API errors carry errorCode / errorSummary (https://developer.okta.com/docs/reference/error-codes/).
 * E0000004's summary ("Authentication failed") is left out of `messages`: other IdPs use the same words.
 */
const OKTA_ENTRIES: TextPatternEntry[] = [
  // Okta's token endpoint for a wrong secret (as commonly reported; okta-developer-docs examples).
  { idp: 'okta', code: 'invalid_client (secret)', messages: ['The client secret supplied for a confidential client is invalid'], title: 'wrong client secret', cause: 'the secret sent is not a current secret of this Okta app (rotated, or another app\'s).', fix: 'copy an active Client Secret from the app\'s General tab (Client Credentials) into the secret file, alone on one line; with two active secrets during a rotation, either works', claim: 'client_secret' },
  // Okta's token endpoint, as reported in okta/okta-sdk-dotnet#600.
  { idp: 'okta', code: 'invalid_client (audience)', messages: ['audience claim for client_assertion must be the endpoint invoked'], title: 'audience is not the token endpoint', cause: 'Okta wants aud = the full URL of the token endpoint called, e.g. https://{org}/oauth2/v1/token (not the issuer, not another authorization server).', fix: 'set aud to exactly the token URL you POST to', claim: 'aud' },
  { idp: 'okta', code: 'E0000011', match: /\bE0000011\b/, messages: ['Invalid token provided'], title: 'invalid token provided', cause: 'the access token sent to the Okta API is missing, expired, or for another org / authorization server.', fix: 'get a fresh token from the org authorization server (https://{org}/oauth2/v1/token) for Okta APIs' },
  { idp: 'okta', code: 'E0000006', match: /\bE0000006\b/, messages: ['You do not have permission to perform the requested action'], title: 'no permission for this action', cause: 'the service app\'s token lacks the Okta scope (okta.users.read …) or the app lacks the admin role the API needs.', fix: 'grant the okta.* scope to the service app (Okta API Scopes tab), request it in scope, and assign an admin role if the API needs one' },
  { idp: 'okta', code: 'E0000015', match: /\bE0000015\b/, messages: ['You do not have permission to access the feature you are requesting'], title: 'feature not available', cause: 'the org lacks the feature this API needs.', fix: 'check the org\'s features / licence for this API' },
  { idp: 'okta', code: 'E0000004', match: /\bE0000004\b/, title: 'authentication failed', cause: 'the credentials sent to the Okta API were not accepted.', fix: 'check the Authorization header (Bearer <access token>)' },
  { idp: 'okta', code: 'E0000047', match: /\bE0000047\b/, messages: ['API call exceeded rate limit due to too many requests'], title: 'rate limit exceeded', cause: 'the org\'s API rate limit was hit.', fix: 'back off (honour X-Rate-Limit-Reset); cache tokens instead of fetching one per call' },
  { idp: 'okta', code: 'E0000022', match: /\bE0000022\b/, messages: ['The endpoint does not support the provided HTTP method'], title: 'method not supported', cause: 'the endpoint does not support the HTTP method used.', fix: 'check the method (the token endpoint takes POST)' },
  { idp: 'okta', code: 'E0000001', match: /\bE0000001\b/, messages: ['Api validation failed'], title: 'API validation failed', cause: 'the request violated a precondition of the endpoint (see errorCauses).', fix: 'read errorCauses in the answer' },
];

/** Auth0 token-endpoint messages (error / error_description) as commonly reported. */
const AUTH0_ENTRIES: TextPatternEntry[] = [
  // Auth0 answers a wrong client id or secret with 401 access_denied "Unauthorized" (auth0/laravel-auth0#42: "the only reason of this error").
  { idp: 'auth0', code: 'access_denied (Unauthorized)', match: /"error"\s*:\s*"access_denied"\s*,\s*"error_description"\s*:\s*"Unauthorized"/, title: 'wrong client id or secret', cause: 'Auth0 answers a client id or secret it does not accept with access_denied "Unauthorized" (401); the tenant logs show a "Failed Exchange" event.', fix: 'copy the application\'s Client ID and Client Secret (Applications → the application → Settings) into the credential and its secret file; check the tenant logs for the failed exchange', claim: 'client_secret' },
  { idp: 'auth0', code: 'unauthorized_client (grant type)', messages: ["Grant type 'client_credentials' not allowed for the client"], title: 'client credentials grant not enabled', cause: 'the application may not use the client_credentials grant.', fix: 'enable "Client Credentials" under the application\'s Advanced Settings → Grant Types (a Machine to Machine application has it)' },
  { idp: 'auth0', code: 'access_denied (service not enabled)', messages: ['Service not enabled within domain'], title: 'audience is not an API of this tenant', cause: 'the audience form parameter names no API registered in this Auth0 tenant.', fix: 'set tokenParams.audience to the API Identifier shown under Applications → APIs' },
  { idp: 'auth0', code: 'access_denied (no client grant)', messages: ['Client is not authorized to access', 'client-grant'], title: 'application not authorised for the API', cause: 'there is no client grant between this application and the API named in audience.', fix: 'authorise the application on the API (APIs → Machine to Machine Applications) and grant the scopes' },
];

/** Power BI REST API answers with a valid token but no access (docs/design.md §10.10). */
const POWERBI_ENTRIES: TextPatternEntry[] = [
  {
    idp: 'powerbi',
    code: 'PowerBINotAuthorizedException',
    messages: ['PowerBINotAuthorizedException'],
    title: 'Power BI refused a valid token',
    cause: 'the service principal is not allowed: the tenant setting "Service principals can use Fabric APIs" (formerly "Allow service principals to use Power BI APIs") is off or its security group does not contain the service principal, the service principal is not a member of the workspace, or (admin APIs) "Service principals can access read-only admin APIs" is off or the app has admin-consent Power BI permissions. A token for another resource or cloud gives the same answer.',
    fix: 'enable the tenant setting for a security group that contains the service principal, add it to the workspace as Member or Admin, use /groups/{workspaceId}/… routes (not My Workspace), and remove Power BI API permissions from the app registration',
  },
];

export const TEXT_PATTERN_CATALOGUE: readonly TextPatternEntry[] = [...KEYCLOAK_ENTRIES, ...OKTA_ENTRIES, ...AUTH0_ENTRIES, ...POWERBI_ENTRIES];

export function explainAadsts(code: number): IdpErrorExplanation | undefined {
  return AADSTS_CATALOGUE[code];
}

export function explainOAuthError(error: string): OAuthErrorExplanation | undefined {
  return Object.hasOwn(OAUTH_ERROR_CATALOGUE, error) ? OAUTH_ERROR_CATALOGUE[error] : undefined;
}

/** AADSTS numbers whose message the normalised text holds: for Entra text pasted without its code. */
export function aadstsCodesByMessage(normalizedText: string): number[] {
  return Object.entries(AADSTS_CATALOGUE)
    .filter(([, x]) => containsMessage(normalizedText, x.messages))
    .map(([code]) => Number(code));
}

/** RFC 6749 §5.2 error codes standing alone in text ("invalid_client", "error=invalid_grant"), first one wins. */
export function oauthErrorCodeIn(text: string): string | undefined {
  for (const m of text.matchAll(/[a-z0-9_]+/gi)) {
    const word = m[0].toLowerCase();
    if (Object.hasOwn(OAUTH_ERROR_CATALOGUE, word)) return word;
  }
  return undefined;
}
