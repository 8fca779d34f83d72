import { getGeneration, listGenerations, type Generation } from '../generations.ts';
import type { Runtime } from '../runtime.ts';
import { requireTeam } from '../teams.ts';
import { refuse } from './output.ts';

export interface JobsOptions {
  action: string;
  id?: string;
  team?: string;
  state?: string;
  json?: boolean;
}

function line(g: Generation): string {
  const pct = g.state === 'running' ? ` ${Math.round(g.progress * 100)}%` : '';
  const cost = g.chargedCredits ?? g.estimatedCredits;
  return `${g.id}  ${g.state.padEnd(10)}${pct.padEnd(5)} ${g.backend.padEnd(8)} ${String(cost).padStart(4)} cr  ${g.createdAt.toISOString().slice(0, 19)}  ${g.request.prompt.slice(0, 50)}`;
}

/** `dreambot jobs list|show ID|cancel ID`. */
export async function jobs(runtime: Runtime, options: JobsOptions, out = process.stdout): Promise<void> {
  const print = (value: unknown, text: string) => out.write(options.json ? `${JSON.stringify(value)}\n` : `${text}\n`);
  switch (options.action) {
    case 'list': {
      const teamId = options.team ? await requireTeam(runtime.db, { platform: 'cli', externalId: options.team }) : undefined;
      const list = await listGenerations(runtime.db, { ...(teamId ? { teamId } : {}), ...(options.state ? { states: options.state.split(',') } : {}) });
      print(list, list.length === 0 ? 'No jobs.' : list.map(line).join('\n'));
      return;
    }
    case 'show': {
      const g = options.id ? await getGeneration(runtime.db, options.id) : null;
      if (!g) refuse(options.id ? `No job ${options.id}.` : 'Which job? dreambot jobs show ID');
      const details = [line(g), `request: ${JSON.stringify(g.request)}`, `attempts: ${g.attempts}, submissions: ${g.submitCount}, handle: ${g.backendHandle ?? '-'}`];
      if (g.errorMessage) details.push(`error: ${g.errorCode} ${g.errorMessage}`);
      print(g, details.join('\n'));
      return;
    }
    case 'cancel': {
      if (!options.id) refuse('Which job? dreambot jobs cancel ID');
      const ended = await runtime.cancel(options.id);
      const g = await getGeneration(runtime.db, options.id);
      print({ id: options.id, cancelled: ended, state: g?.state }, ended ? `Cancelled ${options.id}; its credits were released.` : `Job ${options.id} had already ended (${g?.state}).`);
      return;
    }
    default:
      refuse(`Unknown jobs action "${options.action}". Use: jobs list|show ID|cancel ID.`);
  }
}
