import type { ApprovalPolicy } from '../config/settings.js';
import type { RuntimeStateWriter } from '../instances/runtime-state.js';

/**
 * The `letta` section of runtime-state.json: what `animus health` and `animus status`
 * must show about the agent's Letta side that neither the database nor the process
 * manager tells: an approval held for an operator, one left pending on the agent before
 * the runtime started, a key Letta refuses, an account out of credits. Each condition is
 * cleared by what ends it (a decision, a message Letta accepts, a success).
 */
export const LETTA_SECTION = 'letta';

export interface AwaitingApproval {
  item: number;
  tools: string;
  since: string;
}

/** An approval request found unanswered on the agent at start, before any message of this runtime. */
export interface LeftPending {
  tools: string;
  /** When Letta made the request, if it says. */
  since: string | null;
  policy: ApprovalPolicy;
}

export class LettaState {
  private awaiting: AwaitingApproval | undefined;
  private leftPending: LeftPending | undefined;
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

  /** Set at start from the agent's history; cleared once Letta takes a message (nothing pends) or the 409 hands it to the policy. */
  approvalLeftPending(value: LeftPending | undefined): void {
    if (value === undefined && this.leftPending === undefined) return;
    this.leftPending = value;
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
    if (this.leftPending) problems.push(leftPendingText(this.leftPending, this.agentId));
    const status = this.keyRefused || this.credits ? 'error' : this.awaiting || this.leftPending ? 'warn' : 'ok';
    this.writer.set(LETTA_SECTION, {
      status,
      message: problems.length > 0 ? problems.join('; ') : 'answering',
      awaitingApproval: this.awaiting ?? null,
      approvalLeftPending: this.leftPending ?? null,
      keyRefused: this.keyRefused !== undefined,
      creditsExhausted: this.credits !== undefined,
    });
  }
}

function leftPendingText(pending: LeftPending, agentId: string): string {
  const what = `a tool approval of ${pending.tools} was left pending on the agent${pending.since ? ` since ${pending.since}` : ''}, before this runtime started (Letta refuses every new message until it is answered)`;
  if (pending.policy === 'hold') return `${what}: it is held for an operator when the next message arrives (\`animus approvals list --agent ${agentId}\`), or answer it in Letta`;
  return `${what}: letta.approvals = ${pending.policy} answers it before the next message`;
}
