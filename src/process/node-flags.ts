/**
 * The V8 limits an agent's runtime runs with, from `memory_limit_mb`: the old space
 * gets 60% of it (the rest is SQLite, buffers, code and the young generation, which
 * RSS counts too), so V8 collects before the process manager's RSS limit restarts
 * the instance; the semi-space is 1 MiB, as a broker's garbage is small and short-lived
 * and V8's default lets the young generation grow to 16 MiB per semi-space;
 * `--optimize-for-size` and `--single-threaded-gc` trade some JIT speed and GC threads
 * for a smaller instance (the broker waits on the network, not on JavaScript). Command
 * line flags, as PM2 passes them: NODE_OPTIONS refuses some of them.
 *
 * Measured and left out (bench/runtime and two runtimes side by side on one stand-in,
 * session 4): `--no-opt` and `--lite-mode` take 4 MiB off an idle instance and 6-8 MiB
 * off a loaded one (TurboFan's code is never paged in) but cost 50-80% more CPU per
 * message; `--interrupt-budget=270336` (4x) keeps TurboFan out of start-up (loading
 * better-sqlite3's modules is enough to make path.normalizeString hot), 4 MiB idle, but
 * cost 5-15% more CPU per message, gave nothing under load and depends on how long
 * the agent's paths are; `--gc-memory-reducer-start-delay-ms=1000` shrinks the heap
 * sooner when idle but left more RSS after a load; `--single-threaded` and
 * `--heap-growing-percent=20` changed nothing beyond the noise.
 */
export function runtimeNodeFlags(memoryLimitMb: number): string[] {
  return [`--max-old-space-size=${Math.max(24, Math.floor(memoryLimitMb * 0.6))}`, '--max-semi-space-size=1', '--optimize-for-size', '--single-threaded-gc'];
}
