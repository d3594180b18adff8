import type { RuntimeStateWriter } from '../instances/runtime-state.js';

/**
 * The `letta` section of runtime-state.json: what `animus health` and `animus status`
 * must show about the agent's Letta side that neither the database nor the process
 * manager tells: an approval held for an operator, a key Letta refuses, an account out
 * of credits. Each condition is cleared by what ends it (a decision, a success).
 */
export const LETTA_SECTION = 'letta';

export interface AwaitingApproval {
  item: number;
  tools: string;
  since: string;
}

export class LettaState {
  private awaiting: AwaitingApproval | undefined;
  private keyRefused: string | undefined;
  private credits: string | undefined;

  constructor(
    private readonly writer: RuntimeStateWriter | undefined,
    private readonly agentId: string,
  ) {}

  awaitingApproval(value: AwaitingApproval | undefined): void {
    this.awaiting = value;
    this.flush();
  }

  refusedKey(message: string | undefined): void {
    this.keyRefused = message;
    this.flush();
  }

  outOfCredits(message: string | undefined): void {
    this.credits = message;
    this.flush();
  }

  /** A run ended well: the key works and the account has credits. */
  answered(): void {
    if (this.keyRefused === undefined && this.credits === undefined) return;
    this.keyRefused = undefined;
    this.credits = undefined;
    this.flush();
  }

  private flush(): void {
    if (!this.writer) return;
    const problems: string[] = [];
    if (this.keyRefused) problems.push(`Letta refuses the API key (${this.keyRefused}): set AGENT_API_KEY in the agent's .env, then \`animus restart ${this.agentId}\``);
    if (this.credits) problems.push(`the Letta account is out of credits: add credits, then \`animus queue retry --agent ${this.agentId}\``);
    if (this.awaiting) problems.push(`awaiting approval of ${this.awaiting.tools} since ${this.awaiting.since}: \`animus approvals list --agent ${this.agentId}\``);
    const status = this.keyRefused || this.credits ? 'error' : this.awaiting ? 'warn' : 'ok';
    this.writer.set(LETTA_SECTION, {
      status,
      message: problems.length > 0 ? problems.join('; ') : 'answering',
      awaitingApproval: this.awaiting ?? null,
      keyRefused: this.keyRefused !== undefined,
      creditsExhausted: this.credits !== undefined,
    });
  }
}
