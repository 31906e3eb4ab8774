// Value shapes the configuration schema parts share (config/, idps/, client-auth/ each own a part).
import { z } from 'zod';

/** Credential and caller ids: short, URL- and label-safe. */
const RESOURCE_ID = /^[a-z0-9][a-z0-9\-_.]{0,63}$/;
export const resourceId = z.string().regex(RESOURCE_ID, 'must match [a-z0-9][a-z0-9-_.]{0,63}');

export const httpUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && !u.hash;
    } catch {
      return false;
    }
  }, 'must be an absolute http(s) URL without credentials or fragment');

export const filePath = z.string().min(1, 'must name a file');
