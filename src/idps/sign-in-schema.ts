// A delegated credential's `signIn` block: how a person signs in once, after which the broker holds
// the grant (a refresh token) and redeems it for access tokens (docs/delegated-credentials.md).
import { z } from 'zod';
import { httpUrl } from '../kernel/schema-primitives.ts';

export const SIGN_IN_FLOWS = ['authorization_code', 'device_code'] as const;
export type SignInFlow = (typeof SIGN_IN_FLOWS)[number];

/** The path the broker serves the authorization code redirect on; redirectUri must end with it. */
export const SIGN_IN_CALLBACK_PATH = '/v1/sign-in/callback';

/**
 * A refresh at least this often even when nobody asks for a token. 20 minutes stays inside the
 * shortest idle limit in common use: Keycloak's SSO Session Idle (30 minutes by default) for a
 * grant obtained without offline_access. With offline_access Keycloak allows 30 days idle, Okta's
 * default policy 7 days, Auth0 and Entra (90 days) longer; a refresh every 20 minutes costs three
 * IdP calls an hour per credential and keeps every one of them alive.
 */
export const DEFAULT_KEEP_ALIVE_SECONDS = 1200;

export const signInSchema = z
  .object({
    flow: z.enum(SIGN_IN_FLOWS).describe('authorization_code (a browser, PKCE S256) or device_code (RFC 8628: any device)'),
    redirectUri: httpUrl
      .optional()
      .describe(`authorization_code: the broker's public ${SIGN_IN_CALLBACK_PATH} URL, registered at the IdP exactly as written`),
    scopes: z
      .array(z.string().trim().min(1).max(1024))
      .min(1)
      .max(64)
      .optional()
      .describe("asked for at sign-in (default: openid, offline_access and the credential's scopes)"),
    keepAliveSeconds: z
      .number()
      .int()
      .min(60)
      .max(30 * 86_400)
      .default(DEFAULT_KEEP_ALIVE_SECONDS)
      .describe('refresh at least this often even when idle, so IdP idle limits never end the grant (default 1200)'),
  })
  .strict();

export type SignInConfig = z.infer<typeof signInSchema>;

/** What a delegated credential asks for at sign-in. */
export function signInScopes(signIn: SignInConfig, credentialScopes: readonly string[]): string[] {
  return signIn.scopes ?? [...new Set(['openid', 'offline_access', ...credentialScopes])];
}
