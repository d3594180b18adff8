import { describe, expect, it } from 'vitest';
import { agentIdFromFolderName, parseAgentId } from '../../src/core/agent-id.js';
import { AnimusError } from '../../src/core/errors.js';

const UUID = '721679f6-c8af-4e01-8677-dc042dc80368';

describe('parseAgentId', () => {
  it.each([
    [`agent-${UUID}`, UUID],
    [UUID, UUID],
    [UUID.toUpperCase(), UUID],
    [`AGENT-${UUID}`, UUID],
    [`  ${UUID}\n`, UUID],
  ])('accepts %j', (input, uuid) => {
    expect(parseAgentId(input)).toEqual({ uuid, id: `agent-${uuid}` });
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['../x', /contains a path/],
    [`../agent-${UUID}`, /contains a path/],
    [`agent-${UUID}/..`, /contains a path/],
    [`foo/${UUID}`, /contains a path/],
    ['..', /contains a path/],
    ['agent-', /not an agent id/],
    ['agent-1234', /not an agent id/],
    [`user-${UUID}`, /not an agent id/],
    [`${UUID}0`, /not an agent id/],
    ['721679f6c8af4e018677dc042dc80368', /not an agent id/],
    ['zz1679f6-c8af-4e01-8677-dc042dc80368', /not an agent id/],
  ])('refuses %j', (input, message) => {
    let caught: unknown;
    try {
      parseAgentId(input);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AnimusError);
    expect((caught as AnimusError).code).toBe('EBADID');
    expect((caught as AnimusError).message).toMatch(message);
    expect((caught as AnimusError).message).not.toContain('\n');
  });

  it('recognises agent folders and only them', () => {
    expect(agentIdFromFolderName(`agent-${UUID}`)?.uuid).toBe(UUID);
    expect(agentIdFromFolderName(UUID)).toBeUndefined();
    expect(agentIdFromFolderName('agent-notes')).toBeUndefined();
    expect(agentIdFromFolderName(`agent-${UUID.toUpperCase()}`)).toBeUndefined();
  });
});
