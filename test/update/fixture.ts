/** A runtime that stays up until SIGTERM, logging which build it is to its own logs/runtime.log (as the real runtime does; PM2's stdout is /dev/null). */
export function goodRuntime(build: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'fixture-runtime', version: '1.0.0', main: 'main.js' }),
    'main.js': `require('fs').appendFileSync(require('path').join(process.cwd(), 'logs', 'runtime.log'), 'fixture runtime ${build} up ' + process.pid + '\\n');\nsetInterval(() => {}, 1000);\nprocess.on('SIGTERM', () => process.exit(0));\n`,
  };
}

/** A runtime that throws as soon as it starts: what a broken release looks like. */
export const CRASHING_RUNTIME = { 'main.js': "throw new Error('broken release: cannot start');\n" };
