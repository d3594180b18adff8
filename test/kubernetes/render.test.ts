/**
 * `animus kubernetes render` through the CLI, and every rendered manifest validated offline
 * against the Kubernetes API schemas (kubernetes-models, the OpenAPI definitions compiled
 * into validators; no cluster, no network).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { initHome } from '../../src/home/init.js';
import { json, runCli } from '../helpers/cli.js';
import { deployTestAgent } from '../helpers/agents.js';
import { tempDir } from '../helpers/temp.js';

const KEY = 'sk-let-4f9a1c2e8b7d';
const TOKEN = '7012398745:AAFq3kz9Xb2LwPm4Rt7Yc1Vn8Hd6Js5Ge0Q';
const ONE = '3d1f7a20-5b6c-4e8d-9f01-a2b3c4d5e6f7';
const TWO = '4e2a8b31-6c7d-4f9e-8a12-b3c4d5e6f7a8';

type Manifest = Record<string, any>;

const VALIDATORS: Record<string, (object: Manifest) => { validate(): void }> = {
  StatefulSet: (object) => new StatefulSet(object as never),
  Service: (object) => new Service(object as never),
  Secret: (object) => new Secret(object as never),
};

/** Throws the schema's own message when an object does not match its kind's schema. */
function validateManifest(object: Manifest): void {
  const make = VALIDATORS[object.kind];
  if (!make) throw new Error(`no schema for kind ${object.kind}`);
  make(object).validate();
}

function readYaml(file: string): Manifest[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((doc) => doc.toJS() as Manifest);
}

describe('animus kubernetes render', () => {
  let home = '';
  let out = '';
  const manifests: Record<string, Manifest> = {};

  beforeAll(async () => {
    const root = await tempDir('animus-k8s');
    home = join(root, 'home');
    out = join(root, 'k8s');
    await initHome(home);
    await deployTestAgent(home, { uuid: ONE, mode: 'echo', apiKey: KEY, env: { TELEGRAM_BOT_TOKEN: TOKEN } });
    await deployTestAgent(home, { uuid: TWO, mode: 'echo', apiKey: KEY });
    const set = await runCli(['settings', 'set', '--agent', `agent-${TWO}`, 'memory_limit_mb', '384'], { home });
    expect(set.code, set.stderr).toBe(0);
    const result = await runCli(['--json', 'kubernetes', 'render', `agent-${ONE}`, TWO, '--namespace', 'bots', '--storage-class', 'local-path', '--storage', '2Gi', '--out', out], { home });
    expect(result.code, result.stderr).toBe(0);
    const doc = json<{ agents: Array<{ id: string; files: string[] }> }>(result);
    expect(doc.agents.map((agent) => agent.id)).toEqual([`agent-${ONE}`, `agent-${TWO}`]);
    for (const id of [ONE, TWO]) {
      for (const name of ['statefulset', 'service', 'secret']) manifests[`${id}/${name}`] = readYaml(join(out, `agent-${id}`, `${name}.yaml`))[0]!;
    }
  });

  it('validates every rendered object against the Kubernetes schemas', () => {
    const files = readdirSync(out, { recursive: true, withFileTypes: true }).filter((entry) => entry.isFile() && entry.name.endsWith('.yaml') && entry.name !== 'kustomization.yaml');
    expect(files).toHaveLength(6);
    for (const file of files) {
      for (const object of readYaml(join(file.parentPath, file.name))) expect(() => validateManifest(object), `${file.name}`).not.toThrow();
    }
  });

  it('the schema check catches a wrong manifest (so the check above can fail)', () => {
    const broken = structuredClone(manifests[`${ONE}/statefulset`]!);
    broken.spec.replicas = 'one';
    expect(() => validateManifest(broken)).toThrow(/replicas/);
    const noTemplate = structuredClone(manifests[`${ONE}/statefulset`]!);
    delete noTemplate.spec.template;
    expect(() => validateManifest(noTemplate)).toThrow(/template/);
  });

  it('writes a Kustomize folder per agent and a kustomization listing both, all private', () => {
    const top = readYaml(join(out, 'kustomization.yaml'))[0]!;
    expect(top).toMatchObject({ kind: 'Kustomization', namespace: 'bots' });
    expect(top.resources).toEqual([ONE, TWO].flatMap((id) => ['statefulset.yaml', 'service.yaml', 'secret.yaml'].map((file) => `agent-${id}/${file}`)));
    // kubectl 1.20's kustomize (v2.0.3) refuses a folder among the resources ("must be a file"): only files are listed.
    for (const resource of top.resources as string[]) expect(statSync(join(out, resource)).isFile(), resource).toBe(true);
    const own = readYaml(join(out, `agent-${ONE}`, 'kustomization.yaml'))[0]!;
    expect(own.resources).toEqual(['statefulset.yaml', 'service.yaml', 'secret.yaml']);
    expect(statSync(join(out, `agent-${ONE}`)).mode & 0o777).toBe(0o700);
    expect(statSync(join(out, `agent-${ONE}`, 'secret.yaml')).mode & 0o777).toBe(0o600);
  });

  it('runs one replica with the agent folder on a volume claimed from the template', () => {
    const set = manifests[`${ONE}/statefulset`]!;
    expect(set.metadata).toMatchObject({ name: `animus-${ONE}`, namespace: 'bots' });
    expect(set.spec.replicas).toBe(1);
    expect(set.spec.serviceName).toBe(`animus-${ONE}`);
    expect(set.spec.volumeClaimTemplates).toEqual([
      expect.objectContaining({ metadata: expect.objectContaining({ name: 'data' }), spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'local-path', resources: { requests: { storage: '2Gi' } } } }),
    ]);
    const runtime = set.spec.template.spec.containers[0];
    expect(runtime.volumeMounts).toContainEqual({ name: 'data', mountPath: '/var/lib/animus' });
    expect(runtime.args.at(-1)).toBe(`/var/lib/animus/agent-${ONE}/runtime/main.js`);
    expect(manifests[`${ONE}/service`]!.spec.clusterIP).toBe('None');
  });

  it("starts the folder's runtime, or the image's where the volume holds no agent (a replica past 0), never a crash loop", async () => {
    const runtime = manifests[`${ONE}/statefulset`]!.spec.template.spec.containers[0];
    // The container's command line, run by a real sh with a `node` on the PATH that prints what it was given.
    const root = await tempDir('animus-k8s-args');
    const bin = join(root, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'node'), '#!/bin/sh\necho "node $*"\n', { mode: 0o755 });
    const folderRuntime = join(root, 'agent', 'runtime', 'main.js');
    const run = () => execFileSync(runtime.args[0], [...runtime.args.slice(1, -1), folderRuntime], { env: { PATH: `${bin}:/usr/bin:/bin` }, encoding: 'utf8' }).trim();
    expect(run()).toBe('node /opt/animus/dist/runtime/main.js');
    mkdirSync(dirname(folderRuntime), { recursive: true });
    writeFileSync(folderRuntime, '');
    expect(run()).toBe(`node ${folderRuntime}`);
    expect(runtime.workingDir).toBe('/var/lib/animus');
  });

  it("carries the .env only in the Secret, mounted as one 0400 file, never as environment variables", () => {
    const secret = manifests[`${ONE}/secret`]!;
    const envText = Buffer.from(secret.data['.env'], 'base64').toString('utf8');
    expect(envText).toContain(`AGENT_API_KEY=${KEY}`);
    expect(envText).toContain(`TELEGRAM_BOT_TOKEN=${TOKEN}`);
    const setText = readFileSync(join(out, `agent-${ONE}`, 'statefulset.yaml'), 'utf8');
    expect(setText).not.toContain(KEY);
    expect(setText).not.toContain(TOKEN);
    const pod = manifests[`${ONE}/statefulset`]!.spec.template.spec;
    for (const container of [...pod.initContainers, ...pod.containers]) {
      expect(container.envFrom).toBeUndefined();
      expect(container.env.filter((e: Manifest) => e.valueFrom?.secretKeyRef)).toEqual([]);
    }
    const volume = pod.volumes.find((v: Manifest) => v.name === 'env');
    expect(volume.projected.sources[0].secret).toMatchObject({ name: `animus-${ONE}-env`, items: [{ key: '.env', mode: 0o400 }] });
    expect(volume.projected.defaultMode).toBe(0o400);
  });

  it('takes requests and limits from memory_limit_mb', () => {
    expect(manifests[`${ONE}/statefulset`]!.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '50m', memory: '256Mi' }, limits: { memory: '256Mi' } });
    expect(manifests[`${TWO}/statefulset`]!.spec.template.spec.containers[0].resources).toEqual({ requests: { cpu: '50m', memory: '384Mi' }, limits: { memory: '384Mi' } });
  });

  it('probes the runtime itself and gives it its stop time', () => {
    const pod = manifests[`${ONE}/statefulset`]!.spec.template.spec;
    const runtime = pod.containers[0];
    expect(runtime.readinessProbe.exec.command).toEqual(['animus', 'kubernetes', 'probe', 'ready']);
    expect(runtime.livenessProbe.exec.command).toEqual(['animus', 'kubernetes', 'probe', 'live']);
    expect(pod.terminationGracePeriodSeconds).toBe(15);
    expect(runtime.env).toContainEqual({ name: 'ANIMUS_IN_CONTAINER', value: '1' });
  });

  it('runs as non-root with no privilege, no capability, the default seccomp profile and a read-only root', () => {
    const pod = manifests[`${ONE}/statefulset`]!.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      expect(container.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
  });

  it('refuses an unknown agent or a bad namespace in one line, writing nothing', async () => {
    const fresh = join(out, '..', 'other');
    const missing = await runCli(['kubernetes', 'render', 'agent-5f3b9c42-7d8e-4a0f-9b23-c4d5e6f7a8b9', '--out', fresh], { home });
    expect(missing.code).toBe(3);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const badNs = await runCli(['kubernetes', 'render', ONE, '--namespace', 'Bad_NS', '--out', fresh], { home });
    expect(badNs.code).toBe(2);
    expect(badNs.stderr).toContain('--namespace "Bad_NS"');
    expect(() => statSync(fresh)).toThrow();
  });
});
