// The `certificate` way of authenticating a client (RFC 7523 private_key_jwt): the files that hold
// the certificate and key, and how the assertion is signed. The assertion defaults per IdP come from
// the IdP kind (src/idps/).
import { z } from 'zod';
import { filePath } from '../../kernel/schema-primitives.ts';

/** Entra: "keep it short - 5-10 minutes after nbf at most"; MSAL uses 600 s (docs/design.md §10.4). */
export const DEFAULT_ASSERTION_LIFETIME_SECONDS = 600;
export const MAX_ASSERTION_LIFETIME_SECONDS = 600;

export const certificateSchema = z
  .object({
    certFile: filePath.optional().describe('PEM certificate; may hold the chain'),
    keyFile: filePath.optional().describe('PEM private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC)'),
    pfxFile: filePath.optional().describe('PKCS#12 / PFX bundle with the key and the certificate chain'),
    passphraseFile: filePath.optional().describe('file holding the PFX or encrypted-key passphrase'),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.pfxFile) {
      for (const f of ['certFile', 'keyFile'] as const) {
        if (c[f]) ctx.addIssue({ code: 'custom', path: [f], message: 'give either pfxFile or certFile + keyFile, not both' });
      }
      return;
    }
    if (!c.certFile) ctx.addIssue({ code: 'custom', path: ['certFile'], message: 'required (or pfxFile)' });
    if (!c.keyFile) ctx.addIssue({ code: 'custom', path: ['keyFile'], message: 'required with certFile' });
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
export type AssertionConfig = z.infer<typeof assertionSchema>;
