import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatEnvValue, setEnvValue, type EnvMap } from '../config/env-file.js';
import { packageRoot } from '../core/package-root.js';

export interface EnvValues {
  AGENT_ID: string;
  AGENT_ENDPOINT: string;
  AGENT_API_KEY: string;
}

/**
 * Renders templates/agent.env: the three agent values in place, then each extra
 * variable set through setEnvValue, which fills a documented placeholder such as
 * `# TELEGRAM_BOT_TOKEN=` where the template has one.
 */
export async function renderEnv(values: EnvValues, extra: EnvMap): Promise<string> {
  const template = await readFile(join(packageRoot(), 'templates', 'agent.env'), 'utf8');
  let text = template.replace(/\{\{(AGENT_ID|AGENT_ENDPOINT|AGENT_API_KEY)\}\}/g, (_, key: keyof EnvValues) => formatEnvValue(key, values[key]));
  for (const [key, value] of Object.entries(extra)) text = setEnvValue(text, key, value);
  return text;
}

/** The variables the runtime reads, as documented (set or commented out) in templates/agent.env. */
export async function documentedEnvKeys(): Promise<Set<string>> {
  const template = await readFile(join(packageRoot(), 'templates', 'agent.env'), 'utf8');
  return new Set([...template.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
}
