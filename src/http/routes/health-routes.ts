// /livez: the process answers. /readyz: config loaded, every certificate usable, cache reachable.
import type { Request, Response, Router } from 'express';
import type { Clock } from '../../core/clock.ts';
import type { TokenService } from '../../core/token-service.ts';

import { EXPIRY_WARNING_DAYS } from '../../credentials/certificate-source.ts';
import { familyRouter } from '../route-table.ts';

const DAY_MS = 86_400_000;

export function healthRoutes(deps: { tokenService: TokenService; clock: Clock; isShuttingDown: () => boolean }): Router {
  const livez = (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  };

  const readyz = (_req: Request, res: Response) => {
    const now = deps.clock.now();
    const certificates = deps.tokenService.listCredentials().map((r) => {
      const cert = r.certificates.current();
      const notAfter = cert.notAfter.getTime();
      const status = notAfter <= now ? 'expired' : notAfter - now < EXPIRY_WARNING_DAYS * DAY_MS ? 'expiring_soon' : 'ok';
      const reloadProblem = r.certificates.reloadProblem();
      return {
        credential: r.config.id,
        status,
        not_after: cert.notAfter.toISOString(),
        days_left: Math.floor((notAfter - now) / DAY_MS),
        thumbprint: cert.thumbprints.sha1Hex,
        ...(reloadProblem ? { reload_problem: reloadProblem } : {}),
      };
    });
    const shuttingDown = deps.isShuttingDown();
    const certificatesOk = certificates.every((c) => c.status !== 'expired');
    const cache = deps.tokenService.cacheStatus();
    // Redis down is degraded, not unready: tokens are still served from memory and exchanges work.
    const ready = !shuttingDown && certificatesOk;
    const degraded = cache.state !== 'ok' || certificates.some((c) => c.status === 'expiring_soon' || c.reload_problem);
    res.setHeader('Cache-Control', 'no-store');
    res.status(ready ? 200 : 503).json({
      status: ready ? (degraded ? 'degraded' : 'ok') : 'not_ready',
      checks: {
        config: 'ok',
        shutting_down: shuttingDown,
        certificates,
        cache: { kind: cache.kind, status: cache.state, ...(cache.detail ? { detail: cache.detail } : {}) },
      },
    });
  };

  return familyRouter('health', { 'GET /livez': livez, 'GET /readyz': readyz });
}
