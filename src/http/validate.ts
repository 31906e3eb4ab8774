import type { z } from 'zod';
import { formatPath } from '../config/load.ts';
import { InvalidFields } from '../kernel/errors.ts';

/** Parses a request part with its schema, or throws a 400 naming every bad field. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new InvalidFields(
    result.error.issues.flatMap((issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => ({ field: formatPath([...issue.path, key]), message: 'unknown field' }))
        : [{ field: formatPath(issue.path), message: issue.message }],
    ),
  );
}
