#!/usr/bin/env node
// CommonJS (bin/package.json): Node starts a CommonJS entry faster than an ES module one.
'use strict';
const major = Number(process.versions.node.split('.')[0]);
if (major < 20) {
  process.stderr.write(`animus: needs Node.js 20 or newer; this is ${process.version}: install a newer Node.js\n`);
  process.exit(6);
}
let launcher;
try {
  launcher = require('../dist/cli/launch.cjs');
} catch (error) {
  if (error?.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('dist/cli/launch.cjs')) throw error;
  process.stderr.write(`animus: it is not built yet: run \`npm run build\` in ${require('node:path').dirname(__dirname)}\n`);
  process.exit(6);
}
// main() reports every error of a command itself; this is the launcher failing to load the CLI (a broken install).
launcher.launch(process.argv).catch((error) => {
  process.stderr.write(`animus: cannot start the CLI (${String(error?.message ?? error).split("\n")[0]}): run \`npm run build\` in ${require('node:path').dirname(__dirname)}\n`);
  process.exit(70);
});
