// What a caller may ask a credential for, normalised the same way everywhere (token route,
// managed-identity endpoint, diagnostics). How an IdP wants its scopes is the IdP kind's to say.
import { Forbidden, InvalidRequest } from '../kernel/errors.ts';
import type { CredentialRuntime } from './token-service.ts';

/** The credential's configured scopes, normalised the way requests are. */
export function configuredScopes(runtime: CredentialRuntime): string[] {
  return runtime.config.scopes.map((s) => runtime.idp.normaliseScope(s));
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
    const forResource = runtime.idp.scopeForResource(request.resource);
    if (forResource !== undefined) {
      scope = forResource;
    } else {
      // An IdP without resources: the credential may list the resource itself as a scope (managed-identity clients send resources).
      scope = runtime.idp.normaliseScope(request.resource);
      if (!allowed.includes(scope)) throw new InvalidRequest(`resource applies to entra credentials; '${c.id}' is an ${c.provider} credential: use scope`, 'resource');
    }
  } else if (request.scope !== undefined && request.scope.trim() !== '') {
    scope = runtime.idp.normaliseScope(request.scope);
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
