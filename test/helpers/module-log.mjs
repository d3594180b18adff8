// `node --import ./test/helpers/module-log.mjs …`: registers module-log-hooks.mjs for ESM, and
// notes what CommonJS require() resolves too (the CLI bundle and commander are CommonJS; Node 20's
// module hooks do not see require).
import { appendFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { pathToFileURL } from 'node:url';

register('./module-log-hooks.mjs', import.meta.url);

const Module = createRequire(import.meta.url)('node:module');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (...args) {
  const file = resolveFilename.apply(this, args);
  if (process.env.ANIMUS_TEST_MODULE_LOG && file.startsWith('/')) appendFileSync(process.env.ANIMUS_TEST_MODULE_LOG, `${pathToFileURL(file).href}\n`);
  return file;
};
