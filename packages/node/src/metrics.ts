import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Outcomes a job is counted under in `firn_jobs_total` and `firn_job_duration_seconds`. */
export type JobOutcome = 'proved' | 'finalized' | 'failed';

/** What the node reads at each scrape for its gauges (undefined: the gauge is left unset). */
export interface NodeMetricsSnapshot {
  enclaveUp: boolean;
  identity?: { enclaveId: string; teeType: string; status: string };
  /** Present on a node with a chain. */
  chain?: {
    up: boolean;
    clockSkewSeconds?: number;
    /** Seconds since the chain head last advanced (or was last read), per the chain monitor. */
    headLagSeconds?: number;
    storageUp: boolean;
    jobsActive: number;
  };
}

/**
 * The node's Prometheus metrics (prom-client, one registry per node so that several nodes in one
 * process never share series). Exposed at GET /metrics in the Prometheus text format 0.0.4.
 *
 * Series: `firn_http_requests_total{method,route,status}` (route is the declared path, e.g.
 * `/v1/jobs/:id`, or `unmatched`; status 499 = client closed the request),
 * `firn_http_request_duration_seconds{method,route}`, `firn_jobs_total{outcome}`,
 * `firn_job_duration_seconds{outcome}` (admission to outcome, chain seconds),
 * `firn_attestations_total{result}`, `firn_enclave_restarts_total`, and the gauges
 * `firn_enclave_up`, `firn_node_info{enclave_id,tee_type,status}`, `firn_chain_up`,
 * `firn_chain_head_lag_seconds`, `firn_chain_clock_skew_seconds`, `firn_storage_up`,
 * `firn_jobs_active`. Labels never carry request content: routes are declared patterns.
 */
export class NodeMetrics {
  readonly registry = new Registry();
  private readonly httpRequests = new Counter({
    name: 'firn_http_requests_total',
    help: 'HTTP requests by method, declared route and status (499: the client closed the request)',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  private readonly httpDuration = new Histogram({
    name: 'firn_http_request_duration_seconds',
    help: 'HTTP request handling time by method and declared route, seconds',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120],
    registers: [this.registry],
  });
  private readonly jobs = new Counter({
    name: 'firn_jobs_total',
    help: 'Jobs by outcome (proved, finalized, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly jobDuration = new Histogram({
    name: 'firn_job_duration_seconds',
    help: 'Time from admission to outcome, chain seconds',
    labelNames: ['outcome'] as const,
    buckets: [1, 5, 15, 60, 300, 900, 3600, 14400],
    registers: [this.registry],
  });
  private readonly attestations = new Counter({
    name: 'firn_attestations_total',
    help: 'Evidence bundles requested, by result (ok, error)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  private readonly enclaveRestarts = new Counter({
    name: 'firn_enclave_restarts_total',
    help: 'Enclave process restarts',
    registers: [this.registry],
  });
  private readonly gauges = {
    enclaveUp: this.gauge('firn_enclave_up', '1 when the enclave process runs'),
    nodeInfo: this.gauge('firn_node_info', 'Node identity', ['enclave_id', 'tee_type', 'status']),
    chainUp: this.gauge('firn_chain_up', '1 when the chain RPC answered at its last read'),
    headLag: this.gauge('firn_chain_head_lag_seconds', 'Seconds since the chain head was last seen'),
    skew: this.gauge('firn_chain_clock_skew_seconds', 'Host clock minus chain time, seconds'),
    storageUp: this.gauge('firn_storage_up', '1 when the node database takes writes'),
    jobsActive: this.gauge('firn_jobs_active', 'Jobs admitted and not over (running or queued)'),
  };

  /** @param snapshot read at each scrape for the gauges (never throws into the scrape). */
  constructor(private readonly snapshot: () => NodeMetricsSnapshot = () => ({ enclaveUp: false })) {}

  private gauge(name: string, help: string, labelNames: string[] = []): Gauge {
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  /** Count one HTTP request; `seconds` its handling time. */
  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
  }

  /** Count a job outcome; `seconds` from admission, when known. */
  jobOutcome(outcome: JobOutcome, seconds?: number): void {
    this.jobs.inc({ outcome });
    if (seconds !== undefined && Number.isFinite(seconds) && seconds >= 0)
      this.jobDuration.observe({ outcome }, seconds);
  }

  attestation(result: 'ok' | 'error'): void {
    this.attestations.inc({ result });
  }

  enclaveRestarted(): void {
    this.enclaveRestarts.inc();
  }

  /** The Prometheus text exposition (content type: `contentType`). */
  async render(): Promise<string> {
    const s = this.snapshot();
    const g = this.gauges;
    g.enclaveUp.set(s.enclaveUp ? 1 : 0);
    g.nodeInfo.reset();
    if (s.identity)
      g.nodeInfo.set(
        { enclave_id: s.identity.enclaveId, tee_type: s.identity.teeType, status: s.identity.status },
        1,
      );
    if (s.chain) {
      g.chainUp.set(s.chain.up ? 1 : 0);
      if (s.chain.headLagSeconds !== undefined) g.headLag.set(s.chain.headLagSeconds);
      if (s.chain.clockSkewSeconds !== undefined) g.skew.set(s.chain.clockSkewSeconds);
      g.storageUp.set(s.chain.storageUp ? 1 : 0);
      g.jobsActive.set(s.chain.jobsActive);
    }
    return this.registry.metrics();
  }

  /** Content type of `render()`'s text. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
