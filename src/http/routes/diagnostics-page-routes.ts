// GET /diagnostics: the engineers' page (docs/design.md §5.4). The page needs no authentication; the API calls
// it makes do (the caller key is typed into the page). A strict CSP replaces helmet's default on
// these responses: everything from this origin, nothing inline, no framing, no form posts.
import type { Response, Router } from 'express';
import { PAGE_HTML } from '../diagnostics-page/page-html.ts';
import { PAGE_JS } from '../diagnostics-page/page-script.ts';
import { PAGE_CSS } from '../diagnostics-page/page-style.ts';
import { familyRouter } from '../route-table.ts';

export const DIAGNOSTICS_PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function send(res: Response, type: string, body: string): void {
  res.setHeader('Content-Security-Policy', DIAGNOSTICS_PAGE_CSP);
  // Small and versioned with the broker: revalidate rather than cache for long.
  res.setHeader('Cache-Control', 'no-cache');
  res.type(type).send(body);
}

export function diagnosticsPageRoutes(): Router {
  return familyRouter('diagnostics-page', {
    'GET /diagnostics': (_req, res) => send(res, 'text/html; charset=utf-8', PAGE_HTML),
    'GET /diagnostics/app.js': (_req, res) => send(res, 'text/javascript; charset=utf-8', PAGE_JS),
    'GET /diagnostics/app.css': (_req, res) => send(res, 'text/css; charset=utf-8', PAGE_CSS),
  });
}
