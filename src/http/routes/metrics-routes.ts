import type { Request, Response, Router } from 'express';
import type { BrokerMetrics } from '../../observability/metrics.ts';
import { familyRouter } from '../route-table.ts';

/** GET /metrics: Prometheus text exposition of the broker's own registry. */
export function metricsRoutes(metrics: BrokerMetrics): Router {
  const scrape = async (_req: Request, res: Response) => {
    const text = await metrics.registry.metrics();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(text);
  };
  return familyRouter('metrics', { 'GET /metrics': scrape });
}
