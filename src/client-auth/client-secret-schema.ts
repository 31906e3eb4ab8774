// The `clientSecret` way of authenticating a client (RFC 6749 §2.3.1): a shared secret in a file.
import { z } from 'zod';
import { filePath } from '../kernel/schema-primitives.ts';

export const CLIENT_SECRET_METHODS = ['client_secret_basic', 'client_secret_post'] as const;
export type ClientSecretMethod = (typeof CLIENT_SECRET_METHODS)[number];

export const clientSecretSchema = z
  .object({
    file: filePath.describe('file holding the secret; re-read when it changes; one trailing newline is not part of the secret'),
    method: z
      .enum(CLIENT_SECRET_METHODS)
      .optional()
      .describe('client_secret_basic (the default: Authorization: Basic) or client_secret_post (form fields); Entra always takes the secret as a form field'),
    previousFile: filePath.optional().describe('the secret before a rotation: an invalid_client answer is retried once with it'),
  })
  .strict();

export type ClientSecretConfig = z.infer<typeof clientSecretSchema>;
