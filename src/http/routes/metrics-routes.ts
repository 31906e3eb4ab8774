import { Router } from 'express';
import type { BrokerMetrics } from '../../observability/metrics.ts';

/** GET /metrics: Prometheus text exposition of the broker's own registry. */
export function metricsRoutes(metrics: BrokerMetrics): Router {
  const router = Router();
  router.get('/metrics', async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(await metrics.registry.metrics());
  });
  return router;
}
