#!/usr/bin/env node
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`animus: needs Node.js 20 or newer; this is ${process.version}: install a newer Node.js\n`);
  process.exit(6);
}
const { createRequire } = await import('node:module');
let launcher;
try {
  launcher = createRequire(import.meta.url)('../dist/cli/launch.cjs');
} catch (error) {
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/launch.cjs')) throw error;
  process.stderr.write(`animus: it is not built yet: run \`npm run build\` in ${new URL('..', import.meta.url).pathname}\n`);
  process.exit(6);
}
await launcher.launch(process.argv);
