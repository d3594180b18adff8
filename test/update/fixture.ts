/** A runtime that stays up until SIGTERM, printing which build it is. */
export function goodRuntime(build: string): Record<string, string> {
  return {
    'package.json': JSON.stringify({ name: 'fixture-runtime', version: '1.0.0', main: 'main.js' }),
    'main.js': `console.log('fixture runtime ${build} up', process.pid);\nsetInterval(() => {}, 1000);\nprocess.on('SIGTERM', () => process.exit(0));\n`,
  };
}

/** A runtime that throws as soon as it starts: what a broken release looks like. */
export const CRASHING_RUNTIME = { 'main.js': "throw new Error('broken release: cannot start');\n" };
