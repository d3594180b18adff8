import { describe, expect, it } from 'vitest';
import { agentIdFromUuid } from '../../src/core/agent-id.js';
import { agentPaths, agentPathsIn } from '../../src/home/layout.js';

const agent = agentIdFromUuid('721679f6-c8af-4e01-8677-dc042dc80368');

describe('agent layout', () => {
  it('names every file of an agent folder under it', () => {
    expect(agentPaths('/srv/animus', agent)).toEqual({
      agent,
      dir: `/srv/animus/${agent.id}`,
      clone: `/srv/animus/${agent.id}/runtime`,
      env: `/srv/animus/${agent.id}/.env`,
      settings: `/srv/animus/${agent.id}/settings.json`,
      db: `/srv/animus/${agent.id}/animus.db`,
      logs: `/srv/animus/${agent.id}/logs`,
      updates: `/srv/animus/${agent.id}/updates`,
      outLog: `/srv/animus/${agent.id}/logs/runtime.log`,
      errLog: `/srv/animus/${agent.id}/logs/runtime.err.log`,
    });
  });

  it.each([
    ['/srv/animus//x/', '/srv/animus/x'],
    ['/srv/animus/x/../y', '/srv/animus/y'],
    ['relative/x', 'relative/x'],
  ])('normalizes the folder %s before naming files in it', (folder, dir) => {
    const paths = agentPathsIn(folder, agent);
    expect(paths.dir).toBe(dir);
    expect(paths.env).toBe(`${dir}/.env`);
    expect(paths.errLog).toBe(`${dir}/logs/runtime.err.log`);
  });
});
