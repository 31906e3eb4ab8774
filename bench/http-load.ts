// One autocannon run against one server, reduced to the figures the report needs.
import autocannon from 'autocannon';

export interface LoadSpec {
  url: string;
  /** Extra request headers (Authorization for the broker). */
  headers: Record<string, string>;
  body: string;
  connections: number;
  durationSeconds: number;
}

export interface LoadFigures {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Share of the machine's CPU used by other processes during the run (see foreign-cpu.ts). */
  foreignCpuShare?: number;
}

export async function runLoad(label: string, spec: LoadSpec): Promise<LoadFigures> {
  const result = await autocannon({
    url: `${spec.url}/v1/token`,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...spec.headers },
    body: spec.body,
    connections: spec.connections,
    duration: spec.durationSeconds,
  });
  // A figure taken over error responses would measure the wrong code path (a 401 or 404 is far
  // cheaper than a token), so any non-2xx answer or socket error fails the whole bench.
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0 || result['2xx'] === 0) {
    const statuses = JSON.stringify(result.statusCodeStats ?? {});
    throw new Error(
      `${label}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts, ${result['2xx']} 2xx (status counts ${statuses})`,
    );
  }
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
  };
}
