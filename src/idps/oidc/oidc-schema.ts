// A generic OAuth 2.0 / OIDC provider's part of a credential: issuer or token endpoint, preset, extra form fields.
import { z } from 'zod';
import { httpUrl } from '../../kernel/schema-primitives.ts';
import { baseCredential, scopeList } from '../credential-schema.ts';

export const OIDC_PRESETS = ['keycloak', 'okta', 'auth0', 'generic'] as const;
export type OidcPreset = (typeof OIDC_PRESETS)[number];

export const oidcCredentialSchema = z
  .object({
    ...baseCredential,
    provider: z.literal('oidc'),
    preset: z.enum(OIDC_PRESETS).default('generic'),
    issuer: httpUrl.optional().describe('discovery: {issuer}/.well-known/openid-configuration'),
    tokenEndpoint: httpUrl.optional().describe('skips discovery when set'),
    tokenParams: z
      .record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'form field names are [A-Za-z0-9_.-]'), z.string().max(2048))
      .default({})
      .describe('extra form fields on the token request (Auth0 needs audience)'),
    scopes: scopeList.default([]),
  })
  .strict();

export type OidcCredentialConfig = z.infer<typeof oidcCredentialSchema>;
