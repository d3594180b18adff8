import { AnimusError } from '../../core/errors.js';
import type { CliContext } from '../context.js';

/**
 * Questions for a person at a terminal (inquirer, loaded only when a question is
 * actually asked). Without one, each function fails naming the flag to pass instead.
 */
export async function confirm(ctx: CliContext, message: string, flag: string): Promise<void> {
  if (ctx.globals.yes) return;
  if (!ctx.interactive) throw new AnimusError('ENOTTY', `${message.replace(/\?$/, '')}: no terminal to confirm on; pass ${flag} to proceed`);
  const { confirm: ask } = await import('@inquirer/prompts');
  const yes = await ask({ message, default: false }, { signal: ctx.signal }).catch(promptError);
  if (!yes) throw new AnimusError('EFAILED', 'cancelled: nothing was changed');
}

export async function askText(ctx: CliContext, message: string, flag: string, options: { secret?: boolean; validate?: (value: string) => string | true } = {}): Promise<string> {
  if (!ctx.interactive) throw new AnimusError('ENOTTY', `${message} is required: pass ${flag}`);
  const prompts = await import('@inquirer/prompts');
  const ask = options.secret ? prompts.password : prompts.input;
  return ask({ message, ...(options.secret ? { mask: '*' } : {}), validate: options.validate ?? ((v: string) => (v.trim() === '' ? 'required' : true)) }, { signal: ctx.signal }).catch(promptError);
}

function promptError(error: unknown): never {
  const name = (error as { name?: string })?.name;
  if (name === 'ExitPromptError' || name === 'AbortPromptError') throw new AnimusError('EINTERRUPTED', 'cancelled: nothing was changed');
  throw error;
}
