import { readdir, rename, rm, mkdtemp } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AnimusError } from '../core/errors.js';
import { ensureDir, writeFileAtomic } from '../core/fs.js';
import { VERSION } from '../core/version.js';
import { agentIdFromFolderName } from '../core/agent-id.js';
import { readEnvText, readSettings } from '../instances/agent-files.js';
import { requireAgent } from '../instances/registry.js';
import { buildAgentManifests, DEFAULT_STORAGE, type AgentManifests, type ManifestOptions } from './manifests.js';

/**
 * `animus kubernetes render`: reads each agent's folder (its settings and .env) and writes,
 * per agent, a Kustomize folder `<out>/<agent-id>/` (statefulset, service, secret and a
 * kustomization.yaml), plus `<out>/kustomization.yaml` listing every agent folder in `out`.
 * Each agent folder is assembled aside and renamed into place; files are 0600 and folders
 * 0700, since secret.yaml carries the .env.
 */
export interface RenderOptions {
  home: string;
  ids: string[];
  out: string;
  namespace?: string;
  image?: string;
  storageClass?: string;
  storage?: string;
  awaitPush?: boolean;
}

export interface RenderResult {
  out: string;
  namespace: string;
  image: string;
  agents: Array<{ id: string; dir: string; files: string[]; statefulSet: string; memoryMi: number }>;
  kustomization: string;
}

export const DEFAULT_NAMESPACE = 'animus';
export const DEFAULT_IMAGE = `localhost/animus:${VERSION}`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

export function normalizeManifestOptions(raw: { namespace?: string; image?: string; storageClass?: string; storage?: string; awaitPush?: boolean }): ManifestOptions {
  const namespace = raw.namespace ?? DEFAULT_NAMESPACE;
  if (!DNS_LABEL.test(namespace)) throw new AnimusError('EUSAGE', `--namespace "${namespace}" is not a Kubernetes namespace name (lower-case letters, digits and '-', at most 63)`);
  const image = raw.image ?? DEFAULT_IMAGE;
  if (image.trim() === '' || /\s/.test(image)) throw new AnimusError('EUSAGE', `--image "${image}" is not an image reference, e.g. localhost/animus:${VERSION}`);
  if (raw.storageClass !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(raw.storageClass)) {
    throw new AnimusError('EUSAGE', `--storage-class "${raw.storageClass}" is not a storage class name`);
  }
  const storage = raw.storage ?? DEFAULT_STORAGE;
  if (!QUANTITY.test(storage)) throw new AnimusError('EUSAGE', `--storage "${storage}" is not a size like 1Gi or 500Mi`);
  return { namespace, image, storageClass: raw.storageClass, storage, awaitPush: raw.awaitPush ?? true };
}

/** The manifests of one local agent (also used by push, which applies them). */
export async function agentManifests(home: string, id: string, options: ManifestOptions): Promise<AgentManifests> {
  const paths = await requireAgent(home, id);
  const [settings, envText] = await Promise.all([readSettings(paths), readEnvText(paths)]);
  return buildAgentManifests(paths.agent, settings, envText, options);
}

export async function renderAgents(options: RenderOptions): Promise<RenderResult> {
  if (options.ids.length === 0) throw new AnimusError('EUSAGE', 'name the agents to render: animus kubernetes render <id...> --out DIR');
  const manifestOptions = normalizeManifestOptions(options);
  // Every agent is read before anything is written: one bad agent leaves `out` as it was.
  const all = await Promise.all(options.ids.map((id) => agentManifests(options.home, id, manifestOptions)));
  const out = resolve(options.out);
  await ensureDir(out);
  const agents: RenderResult['agents'] = [];
  for (const manifests of all) {
    const dir = join(out, manifests.id);
    const staging = await mkdtemp(join(out, `.${manifests.id}.`));
    try {
      const files = await writeAgentFolder(staging, manifests);
      await rm(dir, { recursive: true, force: true });
      await rename(staging, dir);
      agents.push({ id: manifests.id, dir, files: files.map((file) => join(dir, file)), statefulSet: manifests.name, memoryMi: manifests.memoryMi });
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  }
  const kustomization = join(out, 'kustomization.yaml');
  const listed = (await readdir(out, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory() && agentIdFromFolderName(entry.name) !== undefined)
    .map((entry) => entry.name)
    .sort();
  // The agents' files, not their folders: the kustomize built into kubectl up to 1.20 (v2.0.3)
  // takes only files as resources (a folder there is a "base"), and every later one reads files too.
  const resources = listed.flatMap((name) => AGENT_FILES.map((file) => `${name}/${file}`));
  await writeYaml(kustomization, [kustomizationOf({ namespace: manifestOptions.namespace, resources })]);
  return { out, namespace: manifestOptions.namespace, image: manifestOptions.image, agents, kustomization };
}

/** The objects' files of every agent folder, in the order they are applied. */
const AGENT_FILES = ['statefulset.yaml', 'service.yaml', 'secret.yaml'] as const;

async function writeAgentFolder(dir: string, manifests: AgentManifests): Promise<string[]> {
  await ensureDir(dir);
  const objects = [manifests.statefulSet, manifests.service, manifests.secret];
  const files = AGENT_FILES.map((name, i) => [name, objects[i]!] as const);
  for (const [name, object] of files) await writeYaml(join(dir, name), [object]);
  await writeYaml(join(dir, 'kustomization.yaml'), [kustomizationOf({ resources: files.map(([name]) => name) })]);
  return [...files.map(([name]) => name), 'kustomization.yaml'];
}

function kustomizationOf(fields: { namespace?: string; resources: string[] }): Record<string, unknown> {
  return { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...(fields.namespace ? { namespace: fields.namespace } : {}), resources: fields.resources };
}

async function writeYaml(path: string, objects: Array<Record<string, unknown>>): Promise<void> {
  const { stringify } = await import('yaml');
  const body = objects.map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false })).join('---\n');
  await writeFileAtomic(path, `# written by animus ${VERSION} (animus kubernetes render)\n${body}`);
}
