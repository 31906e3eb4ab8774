// The `certificate` way of authenticating a client (RFC 7523 private_key_jwt): the files that hold
// the certificate and key, and how the assertion is signed. The assertion defaults per IdP come from
// the IdP kind (src/idps/).
import { z } from 'zod';
import { filePath } from '../../kernel/schema-primitives.ts';

/** Entra: "keep it short - 5-10 minutes after nbf at most"; MSAL uses 600 s (docs/design.md §10.4). */
export const DEFAULT_ASSERTION_LIFETIME_SECONDS = 600;
export const MAX_ASSERTION_LIFETIME_SECONDS = 600;

/** Concurrent signatures per PKCS#11 token: one session each (a session runs one operation at a time, PKCS#11 v2.40 §5.6). */
export const DEFAULT_PKCS11_SESSIONS = 2;

export const pkcs11Schema = z
  .object({
    module: filePath.describe('the PKCS#11 library of the HSM, e.g. /usr/lib/softhsm/libsofthsm2.so'),
    tokenLabel: z.string().min(1).max(32).optional().describe('the token, by its label (or slot)'),
    slot: z.number().int().min(0).optional().describe('the token, by its slot id'),
    keyLabel: z.string().min(1).max(256).optional().describe('the private key, by CKA_LABEL (or keyId)'),
    keyId: z
      .string()
      .regex(/^(?:[0-9a-fA-F]{2})+$/, 'hex bytes, e.g. 01 or a1b2')
      .optional()
      .describe('the private key, by CKA_ID in hex'),
    pinFile: filePath.describe('file holding the user PIN (never logged)'),
    sessions: z.number().int().min(1).max(16).default(DEFAULT_PKCS11_SESSIONS).describe('concurrent signatures (one session each; default 2)'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if ((c.tokenLabel === undefined) === (c.slot === undefined)) ctx.addIssue({ code: 'custom', path: ['tokenLabel'], message: 'give exactly one of tokenLabel or slot' });
    if ((c.keyLabel === undefined) === (c.keyId === undefined)) ctx.addIssue({ code: 'custom', path: ['keyLabel'], message: 'give exactly one of keyLabel or keyId' });
  });

/** https://{vault}.vault.azure.net/keys/{name}[/{version}] (https://learn.microsoft.com/azure/key-vault/general/about-keys-secrets-certificates#object-identifiers). */
const KEY_VAULT_KEY_ID = /^https:\/\/[^/\s]+\/keys\/[0-9A-Za-z-]{1,127}(?:\/[0-9A-Za-z]{1,64})?\/?$/;

export const keyVaultSchema = z
  .object({
    keyId: z
      .string()
      .regex(KEY_VAULT_KEY_ID, 'must be https://<vault>/keys/<name>[/<version>]')
      .describe('the key; without a version the latest one signs, so a rotation is followed'),
    authentication: z
      .union([z.enum(['managedIdentity', 'workloadIdentity']), z.object({ credential: z.string().min(1) }).strict()])
      .default('managedIdentity')
      .describe("how the broker gets Key Vault tokens: its managed identity, workload identity, or { credential: <id> } (another credential of this broker with scope https://vault.azure.net/.default)"),
    managedIdentityClientId: z.string().min(1).optional().describe('a user-assigned managed identity'),
    caFile: filePath.optional().describe('PEM CA bundle for a vault behind a private CA'),
  })
  .strict();

export const certificateSchema = z
  .object({
    certFile: filePath.optional().describe('PEM certificate; may hold the chain'),
    keyFile: filePath.optional().describe('PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)'),
    pfxFile: filePath.optional().describe('PKCS#12 / PFX bundle with the key and the certificate chain'),
    passphraseFile: filePath.optional().describe('file holding the PFX or encrypted-key passphrase'),
    pkcs11: pkcs11Schema.optional().describe('the key in a PKCS#11 token (an HSM): it signs, the key is never read'),
    keyVault: keyVaultSchema.optional().describe('the key in Azure Key Vault: the vault signs digests, the key never leaves it'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const keySources = (['keyFile', 'pfxFile', 'pkcs11', 'keyVault'] as const).filter((f) => c[f] !== undefined);
    if (keySources.length > 1) {
      ctx.addIssue({ code: 'custom', path: [keySources[1]!], message: `give one place for the key: ${keySources.join(' and ')} both name one` });
      return;
    }
    if (c.pfxFile) {
      if (c.certFile) ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'give either pfxFile or certFile + keyFile, not both' });
      return;
    }
    // With keyVault and no certFile, the certificate is the vault's certificate object of the key's name.
    if (!c.certFile && !c.keyVault) {
      ctx.addIssue({ code: 'custom', path: ['certFile'], message: c.pkcs11 ? 'required with pkcs11: the certificate of the key in the token' : 'required (or pfxFile)' });
    }
    if (!c.keyFile && !c.pkcs11 && !c.keyVault) ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'required with certFile (or pkcs11, or keyVault)' });
  });

export const SIGNING_ALGORITHMS = ['RS256', 'PS256', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export const assertionSchema = z
  .object({
    algorithm: z.enum(SIGNING_ALGORITHMS).optional().describe('default: entra PS256 (RSA keys only); oidc RS256 for RSA keys, ES256 for EC P-256'),
    lifetimeSeconds: z
      .number()
      .int()
      .min(30)
      .max(MAX_ASSERTION_LIFETIME_SECONDS)
      .optional()
      .describe('seconds from iat to exp (max 600; default 600, or 60 for the auth0 preset: Auth0 accepts at most 5 minutes)'),
    thumbprint: z
      .enum(['x5t', 'x5t#S256', 'both', 'none'])
      .optional()
      .describe('thumbprint header: default x5t#S256, or x5t for RS256 on entra'),
    sendX5c: z.boolean().default(false).describe('send the certificate chain in x5c (subject name + issuer apps)'),
    kid: z.string().min(1).max(256).optional().describe('key id header, e.g. the kid registered with the IdP'),
  })
  .strict();

export type CertificateConfig = z.infer<typeof certificateSchema>;
export type Pkcs11Config = z.infer<typeof pkcs11Schema>;
export type KeyVaultConfig = z.infer<typeof keyVaultSchema>;
export type AssertionConfig = z.infer<typeof assertionSchema>;
