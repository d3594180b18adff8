import type { Command } from 'commander';
import { EXIT } from '../../core/errors.js';
import { EXAMPLE_ID, examples, type Action } from '../program.js';

type RenderFlags = Omit<import('../../kubernetes/render.js').RenderOptions, 'home' | 'ids'>;

interface ClusterFlags {
  context?: string;
  namespace?: string;
}

export function registerKubernetesCommands(program: Command, action: Action): void {
  const kubernetes = program.command('kubernetes').description('run agents on Kubernetes: one single-replica StatefulSet per agent, its folder on a volume, its .env in a Secret');

  examples(
    kubernetes
      .command('render <ids...>')
      .description("write each agent's manifests (StatefulSet, headless Service, Secret from its .env) as a Kustomize folder, plus a kustomization.yaml listing them")
      .requiredOption('--out <dir>', 'folder to write to (one folder per agent inside; files 0600: secret.yaml holds the .env)')
      .option('--namespace <name>', 'namespace of every object (default: animus)')
      .option('--image <ref>', 'the animus image (default: localhost/animus:<version>, built by image/build-image.sh)')
      .option('--storage-class <name>', "storage class of the agent's volume (default: the cluster's default)")
      .option('--storage <size>', "size of the agent's volume (default: 1Gi)")
      .option('--no-await-push', 'on first start deploy a new agent in the pod instead of waiting for `animus kubernetes push`')
      .action(
        action(async (ctx, ids: string[], flags: RenderFlags) => {
          const { renderAgents } = await import('../../kubernetes/render.js');
          const result = await renderAgents({ home: await ctx.home(), ids, ...flags });
          ctx.out.result(result, () => [
            ...result.agents.map((agent) => `${ctx.out.style.green('✓')} ${agent.id}  ${agent.dir}  (${agent.memoryMi} MiB)`),
            `${ctx.out.style.green('✓')} ${result.kustomization}`,
            '',
            `Apply with: kubectl apply -k ${result.out}   (then \`animus kubernetes push <id>\` moves each agent's data in)`,
          ]);
        }),
      ),
    [`animus kubernetes render ${EXAMPLE_ID} --out ./k8s`, `animus kubernetes render ${EXAMPLE_ID} --namespace bots --storage-class local-path --out ./k8s`],
  );

  examples(
    kubernetes
      .command('push <id>')
      .description('move a local agent into the cluster: stop it here, back it up, apply its manifests, copy the archive into its new volume before the first start, wait until it is ready')
      .option('--context <name>', 'kubectl context (default: the current one)')
      .option('--namespace <name>', 'namespace (default: animus)')
      .option('--image <ref>', 'the animus image (default: localhost/animus:<version>)')
      .option('--storage-class <name>', "storage class of the agent's volume")
      .option('--storage <size>', "size of the agent's volume (default: 1Gi)")
      .option('--from <archive>', 'push this backup archive instead of taking one now')
      .option('--timeout <seconds>', 'how long to wait for the pod at each step (default 300)')
      .action(
        action(async (ctx, id: string, flags: ClusterFlags & { image?: string; storageClass?: string; storage?: string; from?: string; timeout?: string }) => {
          const { pushAgent } = await import('../../kubernetes/push.js');
          const progress = ctx.out.progress(`pushing ${id}`);
          const result = await pushAgent({ home: await ctx.home(), id, env: ctx.env, ...flags, onStep: (step) => progress.update(step) }).catch((error: unknown) => {
            progress.fail();
            throw error;
          });
          progress.done();
          ctx.out.result(result, () => [`${ctx.out.style.green('✓')} ${result.id} runs in ${result.namespace}/${result.pod} (ready); here it is stopped and managed by kubernetes`]);
        }),
      ),
    [`animus kubernetes push ${EXAMPLE_ID} --context prod --namespace bots`],
  );

  kubernetes
    .command('prepare <id>', { hidden: true })
    .description("inside the pod (init container): the volume's home, the agent folder (pushed, or new), its .env from the Secret")
    .action(
      action(async (ctx, id: string) => {
        const { preparePod } = await import('../../kubernetes/prepare.js');
        const result = await preparePod({ id, env: ctx.env, signal: ctx.signal });
        ctx.out.result(result, () => result.steps);
      }),
    );

  kubernetes
    .command('probe <kind>', { hidden: true })
    .description('inside the pod: readiness (ready) or liveness (live) from the runtime\'s status socket; exit 0 when it holds')
    .action(
      action(async (ctx, kind: string) => {
        const { probeRuntime } = await import('../../runtime/container.js');
        const result = await probeRuntime(kind, ctx.env);
        ctx.out.result(result, () => `${result.ok ? 'ok' : 'failed'}: ${result.message}`);
        if (!result.ok) ctx.setExitCode(EXIT.failure);
      }),
    );
}
