// What a caller may ask a credential for, normalised the same way everywhere (token route,
// managed-identity endpoint, diagnostics).
import { normaliseScope } from './cache-key.ts';
import { Forbidden, InvalidRequest } from './errors.ts';
import type { CredentialRuntime } from './token-service.ts';

/** Entra v2 grants app tokens only for `<resource>/.default`; a bare resource means exactly that. */
export function entraScope(value: string): string {
  const trimmed = value.trim();
  return trimmed.endsWith('/.default') ? trimmed : `${trimmed.replace(/\/+$/, '')}/.default`;
}

/** The credential's configured scopes, normalised the way requests are. */
export function configuredScopes(runtime: CredentialRuntime): string[] {
  const c = runtime.config;
  return c.scopes.map((s) => (c.provider === 'entra' ? entraScope(s) : normaliseScope(s)));
}

/**
 * The normalised scope for a request naming a scope, a resource (Entra: resource/.default) or
 * neither (the credential's first scope). Throws InvalidRequest or Forbidden naming the problem.
 */
export function resolveScope(runtime: CredentialRuntime, request: { scope?: string; resource?: string }): string {
  const c = runtime.config;
  if (request.scope !== undefined && request.resource !== undefined) {
    throw new InvalidRequest('give scope or resource, not both', 'resource');
  }
  const allowed = configuredScopes(runtime);
  let scope: string;
  if (request.resource !== undefined) {
    if (c.provider !== 'entra') {
      // An oidc credential may list the resource itself as a scope (managed-identity clients send resources).
      scope = normaliseScope(request.resource);
      if (!allowed.includes(scope)) throw new InvalidRequest(`resource applies to entra credentials; '${c.id}' is an oidc credential: use scope`, 'resource');
    } else {
      scope = entraScope(request.resource);
    }
  } else if (request.scope !== undefined && request.scope.trim() !== '') {
    scope = c.provider === 'entra' ? entraScope(request.scope) : normaliseScope(request.scope);
  } else {
    scope = allowed[0] ?? '';
  }
  if (!allowed.includes(scope) && !(scope === '' && allowed.length === 0)) {
    throw new Forbidden(
      allowed.length > 0
        ? `scope '${scope}' is not configured for credential '${c.id}' (configured: ${allowed.join(', ')})`
        : `credential '${c.id}' is configured without scopes; omit scope`,
    );
  }
  return scope;
}
