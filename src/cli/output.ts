import { isAppError, publicMessage } from '../errors.ts';
import { ConfigError } from '../config.ts';

/** Exit codes: 0 done, 1 the work failed, 2 refused (bad input, credits, config). */
export const EXIT = { ok: 0, failed: 1, refused: 2 } as const;

export class CliExit extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

export function refuse(message: string): never {
  throw new CliExit(EXIT.refused, message);
}

/** One line a person can act on, whatever was thrown. */
export function describeError(error: unknown): { code: number; line: string } {
  if (error instanceof CliExit) return { code: error.code, line: error.message };
  if (error instanceof ConfigError) return { code: EXIT.refused, line: error.message };
  if (isAppError(error)) return { code: error.kind === 'user' ? EXIT.refused : EXIT.failed, line: error.kind === 'user' ? error.message : publicMessage(error) };
  const err = error as { code?: string; message?: string };
  if (err.code === 'ECONNREFUSED') return { code: EXIT.failed, line: `Cannot reach a service (${err.message}). Run \`dreambot doctor\` to see which and how to start it.` };
  return { code: EXIT.failed, line: err.message ?? String(error) };
}

/** A single-line progress bar on a terminal; plain state lines otherwise (logs, CI). */
export class ProgressLine {
  private last = '';
  constructor(private readonly stream: NodeJS.WriteStream = process.stderr) {}

  update(state: string, fraction: number, note?: string): void {
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
      const line = `${state.padEnd(10)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}%${note ? `  ${note}` : ''}`;
      this.stream.write(`\r${line.slice(0, (this.stream.columns ?? 100) - 1).padEnd(this.last.length)}`);
      this.last = line;
    } else if (state !== this.last) {
      this.stream.write(`${state}\n`);
      this.last = state;
    }
  }

  done(): void {
    if (this.stream.isTTY && this.last) this.stream.write('\n');
    this.last = '';
  }
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
