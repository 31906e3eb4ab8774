// Server child: the baseline. A bare Express 5 app (framework defaults, no middleware) that answers
// POST /v1/token with a fixed copy of a real cache-hit response from the broker, so both servers
// send a body of the same size and shape and the ratio measures only the broker's own work.
// Started by bench/run.ts; see server-process.ts for the protocol.
//
// Env: BENCH_RESPONSE_BODY — the JSON body to serve.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { announceReady } from './server-process.ts';

const raw = process.env.BENCH_RESPONSE_BODY;
if (!raw) throw new Error('bare-server: set BENCH_RESPONSE_BODY');
const body = JSON.parse(raw) as unknown;

const app = express();
// res.json serialises on every request, as the broker's route does.
app.post('/v1/token', (_req, res) => {
  res.json(body);
});

const server = createServer(app);
server.keepAliveTimeout = 5_000; // the broker's setting (src/broker.ts)
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));

announceReady((server.address() as AddressInfo).port, async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
});
