import type { Router } from 'express';
import { openApiDocument } from '../openapi.ts';
import { familyRouter } from '../route-table.ts';

export function openApiRoutes(): Router {
  return familyRouter('openapi', { 'GET /openapi.json': (_req, res) => res.json(openApiDocument) });
}
