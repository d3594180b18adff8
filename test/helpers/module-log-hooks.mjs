// Module hooks (module.register) that note every ESM module a process resolves, one URL a line,
// in the file named by ANIMUS_TEST_MODULE_LOG: what a command loads, seen from outside it.
import { appendFileSync } from 'node:fs';

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (process.env.ANIMUS_TEST_MODULE_LOG) appendFileSync(process.env.ANIMUS_TEST_MODULE_LOG, `${result.url}\n`);
  return result;
}
