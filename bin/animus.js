#!/usr/bin/env node
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`animus: needs Node.js 20 or newer; this is ${process.version}: install a newer Node.js\n`);
  process.exit(6);
}
const { main } = await import('../dist/cli/main.js');
await main(process.argv);
