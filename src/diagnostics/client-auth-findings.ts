// Findings about a credential's client-authentication material that no assertion rule sees: the
// state its kind reports (a file gone, a reload that failed, material expired) and, for a client
// secret, which method carries it and what the IdP accepts (docs/design.md §9.1; RFC 6749 §2.3.1).
// Certificates have their own rules (rules/signature-rules.ts). Only public facts: file names,
// times, methods — never a secret or a token.
import type { ClientSecretMethod } from '../client-auth/client-secret-schema.ts';
import type { CredentialRuntime } from '../core/token-service.ts';
import type { Finding } from './assertion-rule.ts';

type CredentialConfig = CredentialRuntime['config'];

/**
 * The method a secret actually goes with: Entra takes it only as the client_secret form field (the
 * v1 form and msal-node both send it so), elsewhere `method`, default client_secret_basic.
 */
export function effectiveSecretMethod(config: CredentialConfig): ClientSecretMethod {
  return config.provider === 'entra' ? 'client_secret_post' : (config.clientSecret?.method ?? 'client_secret_basic');
}

const METHOD_SHAPE: Record<ClientSecretMethod, string> = {
  client_secret_basic: 'Authorization: Basic with client id and secret form-urlencoded first (RFC 6749 §2.3.1)',
  client_secret_post: 'the client_id and client_secret form fields',
};

/**
 * What each IdP accepts for a secret: Entra the form field only; an Okta app the method of its
 * token_endpoint_auth_method (default client_secret_basic); Keycloak's "Client Id and Secret"
 * authenticator and Auth0 either; an OIDC server the method registered for the client (RFC 7591 §2).
 */
function methodNote(config: CredentialConfig, method: ClientSecretMethod): Pick<Finding, 'severity' | 'message' | 'fix' | 'idp_error'> {
  if (config.provider === 'entra') {
    return { severity: 'info', message: 'Entra takes a secret only as the client_secret form field (v1 and v2)' };
  }
  switch (config.preset) {
    case 'okta':
      return method === 'client_secret_post'
        ? {
            severity: 'warning',
            message: 'Okta apps default to client_secret_basic: the app\'s client authentication (token_endpoint_auth_method) must be client_secret_post for this to be accepted',
            fix: 'set the Okta app to "Client secret" with POST, or leave method out (client_secret_basic)',
            idp_error: 'invalid_client',
          }
        : { severity: 'info', message: 'Okta apps default to client_secret_basic' };
    case 'auth0':
      return { severity: 'info', message: 'Auth0 accepts client_secret_basic and client_secret_post' };
    case 'keycloak':
      return { severity: 'info', message: 'Keycloak\'s "Client Id and Secret" authenticator accepts client_secret_basic and client_secret_post' };
    case 'generic':
      return {
        severity: 'info',
        message: `an OIDC server accepts the method registered for the client (token_endpoint_auth_method, RFC 7591 §2, default client_secret_basic); oidc-provider refuses another one: register ${method}`,
      };
  }
}

function secretFindings(config: CredentialConfig, detail: Record<string, unknown>, tokenEndpoint: string | undefined): Finding[] {
  const method = effectiveSecretMethod(config);
  const note = methodNote(config, method);
  const file = String(detail.file ?? config.clientSecret?.file);
  const findings: Finding[] = [
    {
      id: 'client_secret.method',
      claim: 'client_secret',
      ...note,
      message: `the secret in ${file} goes to ${tokenEndpoint ?? 'the token endpoint'} as ${method}, in ${METHOD_SHAPE[method]}: ${note.message}`,
      actual: method,
    },
  ];
  if (typeof detail.modified_at === 'string') {
    const days = typeof detail.age_seconds === 'number' ? Math.floor(detail.age_seconds / 86_400) : undefined;
    findings.push({
      id: 'client_secret.file_changed',
      severity: 'info',
      claim: 'client_secret',
      message:
        `${file} last changed ${detail.modified_at}${days !== undefined ? ` (${days} day${days === 1 ? '' : 's'} ago)` : ''}; ` +
        `the IdP, not the file, knows when the secret expires${config.provider === 'entra' ? ' (Entra then answers AADSTS7000222)' : ''}`,
      actual: detail.modified_at,
      fix:
        'before it expires, create the next secret at the IdP, write it to the file and keep the old one in previousFile until the IdP uses the new one (an invalid_client answer is retried once with it)',
    });
  }
  return findings;
}

const UNAVAILABLE_FIX: Record<string, string> = {
  federatedToken:
    'check the pod\'s projected service-account token volume (audience api://AzureADTokenExchange) and federatedToken.file: the kubelet must keep rewriting that file',
  clientSecret: 'write the secret (one line) into clientSecret.file; the broker re-reads it when it changes',
};

/**
 * Findings from the kind's own status. `linted`: the assertion the kind sends was linted, whose
 * rules already speak of its expiry.
 */
export function clientAuthFindings(input: { runtime: CredentialRuntime; tokenEndpoint?: string; linted: boolean; nowMs: number }): Finding[] {
  const { runtime, nowMs } = input;
  const auth = runtime.auth;
  if (auth.kind === 'certificate') return [];
  const { status, detail } = auth.status(nowMs);
  const findings: Finding[] = [];
  const problem = detail.problem ?? detail.reload_problem;
  if (status === 'unavailable') {
    findings.push({
      id: 'client_auth.unavailable',
      severity: 'error',
      message: `${String(problem ?? 'the client authentication material cannot be used')}: nothing is sent to the IdP until this is fixed`,
      fix: UNAVAILABLE_FIX[auth.kind],
    });
  } else if (detail.reload_problem !== undefined) {
    findings.push({
      id: 'client_auth.reload_problem',
      severity: 'warning',
      message: `${String(detail.reload_problem)}: the broker keeps using what it read before`,
      fix: UNAVAILABLE_FIX[auth.kind],
    });
  }
  if (!input.linted && (status === 'expired' || status === 'expiring_soon')) {
    findings.push({
      id: status === 'expired' ? 'client_auth.expired' : 'client_auth.expiring_soon',
      severity: status === 'expired' ? 'error' : 'warning',
      message: `the client authentication material ${status === 'expired' ? 'has expired' : 'expires soon'}${detail.expires_at ? ` (${String(detail.expires_at)})` : ''}`,
      fix: UNAVAILABLE_FIX[auth.kind],
    });
  }
  if (auth.kind === 'clientSecret') findings.push(...secretFindings(runtime.config, detail, input.tokenEndpoint));
  return findings;
}
