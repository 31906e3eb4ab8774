// /livez: the process answers. /readyz: config loaded, every credential able to authenticate, cache reachable.
import type { Request, Response, Router } from 'express';
import type { Clock } from '../../kernel/clock.ts';
import type { TokenService } from '../../core/token-service.ts';
import { familyRouter } from '../route-table.ts';

export function healthRoutes(deps: { tokenService: TokenService; clock: Clock; isShuttingDown: () => boolean }): Router {
  const livez = (_req: Request, res: Response) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ status: 'ok' });
  };

  const readyz = (_req: Request, res: Response) => {
    const now = deps.clock.now();
    const clientAuth = deps.tokenService.listCredentials().map((r) => ({ credential: r.config.id, kind: r.auth.kind, ...r.auth.status(now) }));
    // The certificate view of earlier releases, kept as it was for the probes and dashboards that read it.
    const certificates = clientAuth.filter((c) => c.kind === 'certificate').map((c) => ({ credential: c.credential, status: c.status, ...c.detail }));
    const shuttingDown = deps.isShuttingDown();
    // Material that no longer works (an expired certificate or federated token, a token file that is not a JWT) needs an operator.
    const clientAuthOk = clientAuth.every((c) => c.status !== 'expired' && c.status !== 'unavailable');
    const cache = deps.tokenService.cacheStatus();
    // Redis down is degraded, not unready: tokens are still served from memory and exchanges work.
    const ready = !shuttingDown && clientAuthOk;
    // A key signer that failed (an HSM or Key Vault away) degrades: cached tokens are still served, and
    // every replica shares the signer, so failing readiness would take them all out of the Service.
    const degraded = cache.state !== 'ok' || clientAuth.some((c) => c.status === 'expiring_soon' || c.detail.reload_problem || c.detail.signer === 'unavailable');
    res.setHeader('Cache-Control', 'no-store');
    res.status(ready ? 200 : 503).json({
      status: ready ? (degraded ? 'degraded' : 'ok') : 'not_ready',
      checks: {
        config: 'ok',
        shutting_down: shuttingDown,
        certificates,
        client_authentication: clientAuth.map((c) => ({ credential: c.credential, kind: c.kind, status: c.status, ...c.detail })),
        cache: { kind: cache.kind, status: cache.state, ...(cache.detail ? { detail: cache.detail } : {}) },
      },
    });
  };

  return familyRouter('health', { 'GET /livez': livez, 'GET /readyz': readyz });
}
