import type { TestRedisServer } from '../../test/support/redis-server.js';

/** What every scenario gets from the orchestrator. */
export type Context = {
  /** The shared private redis-server (scenarios that kill or pause Redis start their own). */
  server: TestRedisServer;
  url: string;
  /** One timed run of the throughput scenarios (BENCH_DURATION_MS). */
  durationMs: number;
  repeats: number;
  /** Progress lines, to stderr. */
  log: (line: string) => void;
};
