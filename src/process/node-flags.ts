/**
 * The V8 limits an agent's runtime runs with, from `memory_limit_mb`: the old space
 * gets 60% of it (the rest is SQLite, buffers, code and the young generation, which
 * RSS counts too), so V8 collects before the process manager's RSS limit restarts
 * the instance; the semi-space is 1 MiB, as a broker's garbage is small and short-lived
 * and V8's default lets the young generation grow to 16 MiB per semi-space;
 * `--optimize-for-size` and `--single-threaded-gc` trade some JIT speed and GC threads
 * for a smaller instance (the broker waits on the network, not on JavaScript). Command
 * line flags, as PM2 passes them: NODE_OPTIONS refuses some of them.
 */
export function runtimeNodeFlags(memoryLimitMb: number): string[] {
  return [`--max-old-space-size=${Math.max(24, Math.floor(memoryLimitMb * 0.6))}`, '--max-semi-space-size=1', '--optimize-for-size', '--single-threaded-gc'];
}
