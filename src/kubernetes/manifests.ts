import type { AgentId } from '../core/agent-id.js';
import type { Settings } from '../config/settings.js';

/**
 * The Kubernetes objects of one agent, as plain data: a StatefulSet of one replica whose
 * volume (from volumeClaimTemplates) is a one-agent animus home, a headless Service it
 * names, and a Secret holding the agent's .env as one file. Pure: rendering, pushing and
 * the schema test all build from here.
 */

/** Inside the pod: the volume is the home, the agent folder one level below, as on a host. */
export const POD_HOME = '/var/lib/animus';
export const POD_SECRET_DIR = '/etc/animus/secret';
export const POD_SECRET_FILE = 'agent.env';
export const POD_RUN_DIR = '/run/animus';
export const POD_STATUS_SOCKET = `${POD_RUN_DIR}/status.sock`;
export const POD_INCOMING = `${POD_HOME}/.animus/incoming`;
/** The image's non-root account (image/build-image.sh creates it with this uid). */
export const POD_UID = 10001;
/** The runtime exits within 10 s of SIGTERM (7 s for the request in flight): the same 15 s PM2 and systemd give it. */
export const TERMINATION_GRACE_S = 15;
export const DEFAULT_STORAGE = '1Gi';
/** The image's own runtime (image/build-image.sh unpacks this build into /opt/animus). */
export const IMAGE_RUNTIME = '/opt/animus/dist/runtime/main.js';

/**
 * The runtime container's command after tini: the agent folder's runtime, or, where the volume
 * holds no agent (a replica past 0, whose claim is a new empty volume), the image's runtime,
 * which holds that pod up and not ready with the reason in its log (instead of node's
 * "Cannot find module" and a crash loop).
 */
export function runtimeArgs(agentDir: string): string[] {
  return ['sh', '-c', `if [ -f "$0" ]; then exec node "$0"; fi; exec node ${IMAGE_RUNTIME}`, `${agentDir}/runtime/main.js`];
}

export interface ManifestOptions {
  namespace: string;
  image: string;
  storageClass?: string;
  storage: string;
  /** The first start waits for `animus kubernetes push` instead of deploying a new, empty agent. */
  awaitPush: boolean;
}

export interface AgentManifests {
  id: string;
  name: string;
  memoryMi: number;
  statefulSet: Record<string, unknown>;
  service: Record<string, unknown>;
  secret: Record<string, unknown>;
}

/** `animus-<uuid>`: 43 characters, so the pod (`-0`) and its revision-hash label stay under 63. */
export function workloadName(agent: AgentId): string {
  return `animus-${agent.uuid}`;
}

export function podName(agent: AgentId): string {
  return `${workloadName(agent)}-0`;
}

export function secretName(agent: AgentId): string {
  return `${workloadName(agent)}-env`;
}

export function buildAgentManifests(agent: AgentId, settings: Settings, envText: string, options: ManifestOptions): AgentManifests {
  const name = workloadName(agent);
  const agentDir = `${POD_HOME}/${agent.id}`;
  const labels = {
    'app.kubernetes.io/name': 'animus-agent',
    'app.kubernetes.io/instance': name,
    'app.kubernetes.io/managed-by': 'animus',
    'animus/agent-id': agent.id,
  };
  const selector = { 'app.kubernetes.io/name': 'animus-agent', 'app.kubernetes.io/instance': name };
  const metadata = (objectName: string) => ({ name: objectName, namespace: options.namespace, labels });
  const memoryMi = settings.memory_limit_mb;
  const env = [
    { name: 'ANIMUS_IN_CONTAINER', value: '1' },
    { name: 'ANIMUS_HOME', value: POD_HOME },
    { name: 'ANIMUS_AGENT_DIR', value: agentDir },
    { name: 'ANIMUS_CONFIG_DIR', value: `${POD_HOME}/.animus/config` },
    { name: 'ANIMUS_STATUS_SOCKET', value: POD_STATUS_SOCKET },
    { name: 'ANIMUS_SECRET_ENV', value: `${POD_SECRET_DIR}/${POD_SECRET_FILE}` },
    { name: 'HOME', value: '/tmp' },
    // V8 collects before the cgroup's OOM killer would end the pod.
    { name: 'NODE_OPTIONS', value: `--max-old-space-size=${Math.max(32, Math.floor(memoryMi * 0.75))}` },
    { name: 'ANIMUS_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
  ];
  const mounts = [
    { name: 'data', mountPath: POD_HOME },
    { name: 'env', mountPath: POD_SECRET_DIR, readOnly: true },
    { name: 'run', mountPath: POD_RUN_DIR },
    { name: 'tmp', mountPath: '/tmp' },
  ];
  const containerSecurity = {
    runAsNonRoot: true,
    runAsUser: POD_UID,
    runAsGroup: POD_UID,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
  const probe = (kind: 'ready' | 'live', periodSeconds: number) => ({
    exec: { command: ['animus', 'kubernetes', 'probe', kind] },
    periodSeconds,
    timeoutSeconds: 5,
    failureThreshold: 3,
  });

  const statefulSet = {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: metadata(name),
    spec: {
      // One agent is one SQLite writer and one Telegram poller: never more than one replica
      // (a second one stays not ready: see the runtime's container mode).
      replicas: 1,
      serviceName: name,
      podManagementPolicy: 'OrderedReady',
      updateStrategy: { type: 'RollingUpdate' },
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: TERMINATION_GRACE_S,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: POD_UID,
            runAsGroup: POD_UID,
            fsGroup: POD_UID,
            fsGroupChangePolicy: 'OnRootMismatch',
            seccompProfile: { type: 'RuntimeDefault' },
          },
          initContainers: [
            {
              name: 'prepare',
              image: options.image,
              imagePullPolicy: 'IfNotPresent',
              command: ['animus', 'kubernetes', 'prepare', agent.id],
              env: [...env, { name: 'ANIMUS_AWAIT_PUSH', value: options.awaitPush ? '1' : '0' }, { name: 'ANIMUS_MODE', value: settings.message_mode }],
              volumeMounts: mounts,
              securityContext: containerSecurity,
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: `${Math.max(128, memoryMi)}Mi` } },
            },
          ],
          containers: [
            {
              name: 'runtime',
              image: options.image,
              imagePullPolicy: 'IfNotPresent',
              // tini reaps what `kubectl exec` leaves behind and passes signals on to the runtime.
              command: ['/usr/bin/tini', '-s', '-g', '--'],
              args: runtimeArgs(agentDir),
              // The home, which every volume has; the runtime finds its folder from ANIMUS_AGENT_DIR.
              workingDir: POD_HOME,
              env,
              volumeMounts: mounts,
              securityContext: containerSecurity,
              resources: { requests: { cpu: '50m', memory: `${memoryMi}Mi` }, limits: { memory: `${memoryMi}Mi` } },
              startupProbe: { ...probe('live', 2), failureThreshold: 30 },
              livenessProbe: probe('live', 10),
              readinessProbe: probe('ready', 5),
            },
          ],
          volumes: [
            {
              name: 'env',
              // A projected volume: its files belong to the pod's runAsUser, so 0400 is readable by it alone.
              projected: { defaultMode: 0o400, sources: [{ secret: { name: secretName(agent), optional: false, items: [{ key: '.env', path: POD_SECRET_FILE, mode: 0o400 }] } }] },
            },
            { name: 'run', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data', labels },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(options.storageClass ? { storageClassName: options.storageClass } : {}),
            resources: { requests: { storage: options.storage } },
          },
        },
      ],
    },
  };

  const service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: metadata(name),
    // Headless: the StatefulSet's governing service; the runtime listens on no port.
    spec: { clusterIP: 'None', selector, publishNotReadyAddresses: false },
  };

  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: metadata(secretName(agent)),
    type: 'Opaque',
    data: { '.env': Buffer.from(envText, 'utf8').toString('base64') },
  };

  return { id: agent.id, name, memoryMi, statefulSet, service, secret };
}
