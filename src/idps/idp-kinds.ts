// The IdP kinds the broker knows, by the `provider` a credential names. A new kind is one folder
// beside entra/ and oidc/, its schema part in config/schema.ts's union, and one line here.
import { entraIdp } from './entra/entra-idp.ts';
import type { EntraCredentialConfig } from './entra/entra-schema.ts';
import type { IdpKind } from './idp-kind.ts';
import { oidcIdp } from './oidc/oidc-idp.ts';
import type { OidcCredentialConfig } from './oidc/oidc-schema.ts';

export type IdpCredentialConfig = EntraCredentialConfig | OidcCredentialConfig;

export const IDP_KINDS = { entra: entraIdp, oidc: oidcIdp } as const;

export function idpKindOf<C extends IdpCredentialConfig>(config: C): IdpKind<C> {
  return IDP_KINDS[config.provider] as unknown as IdpKind<C>;
}
