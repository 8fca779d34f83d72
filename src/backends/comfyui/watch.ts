import WebSocket from 'ws';
import { ErrorCode, permanentError } from '../../errors.ts';
import type { Progress } from '../types.ts';
import { ServerUnreachable, type ComfyClient } from './client.ts';
import { socketMessage, type HistoryEntry } from './schemas.ts';

/**
 * Waits for one prompt on one server. The WebSocket (`/ws?clientId=…`) gives progress and an early
 * "done"; /history and /queue are the truth, polled slowly while the socket is up and at `pollMs` while
 * it is down, since socket messages can be lost.
 */
export type WatchResult =
  | { kind: 'finished'; entry: HistoryEntry }
  /** The server answers but has neither run nor queued the prompt (it restarted, or never got it). */
  | { kind: 'missing' }
  | { kind: 'unreachable'; error: ServerUnreachable };

export interface WatchOptions {
  client: ComfyClient;
  promptId: string;
  clientId: string;
  pollMs: number;
  /** While the socket is open, poll this many times less often. */
  socketPollFactor: number;
  /** Consecutive unreachable polls before the server counts as dead. */
  deadAfterFailures: number;
  timeoutMs: number;
  signal: AbortSignal;
  onProgress: (progress: Progress) => void;
}

export async function watchPrompt(options: WatchOptions): Promise<WatchResult> {
  const { client, promptId, signal } = options;
  let socket: WebSocket | undefined;
  let socketOpen = false;
  let finished = false;
  let wake: (() => void) | undefined;
  let reconnect: NodeJS.Timeout | undefined;
  let sampledSince: number | undefined;
  const poke = () => wake?.();

  const connect = () => {
    if (finished || signal.aborted) return;
    const ws = new WebSocket(client.socketUrl(options.clientId), { handshakeTimeout: 5000 });
    socket = ws;
    ws.on('open', () => { socketOpen = true; });
    ws.on('message', (raw, isBinary) => {
      if (isBinary) return;
      let parsed;
      try {
        parsed = socketMessage.safeParse(JSON.parse(raw.toString()));
      } catch {
        return;
      }
      if (!parsed.success || parsed.data.data.prompt_id !== promptId) return;
      const { type, data } = parsed.data;
      if (type === 'execution_start') options.onProgress({ fraction: 0, state: 'running', note: 'running' });
      if (type === 'progress' && typeof data.value === 'number' && typeof data.max === 'number' && data.max > 0) {
        const fraction = Math.min(0.99, Math.max(0, data.value / data.max));
        sampledSince ??= Date.now();
        const elapsed = (Date.now() - sampledSince) / 1000;
        const etaSeconds = fraction > 0.05 ? Math.round((elapsed / fraction) * (1 - fraction)) : undefined;
        options.onProgress({ fraction, state: 'running', note: 'running', ...(etaSeconds === undefined ? {} : { etaSeconds }) });
      }
      const done = type === 'execution_success' || type === 'execution_error' || type === 'execution_interrupted' || (type === 'executing' && data.node === null);
      if (done) poke();
    });
    const lost = () => {
      const wasOpen = socketOpen;
      socketOpen = false;
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      if (finished || signal.aborted) return;
      if (wasOpen) poke();
      reconnect = setTimeout(connect, Math.max(250, options.pollMs * 2));
      reconnect.unref();
    };
    ws.on('close', lost);
    ws.on('error', () => ws.terminate());
  };

  const check = async (): Promise<WatchResult | 'waiting'> => {
    const entry = await client.history(promptId);
    if (entry) return { kind: 'finished', entry };
    const queue = await client.queue();
    if (queue.running.includes(promptId)) return 'waiting';
    if (queue.pending.includes(promptId)) {
      options.onProgress({ fraction: 0, state: 'queued', note: 'queued on the GPU server' });
      return 'waiting';
    }
    // It may have finished between the two reads.
    const late = await client.history(promptId);
    return late ? { kind: 'finished', entry: late } : { kind: 'missing' };
  };

  const onAbort = () => poke();
  signal.addEventListener('abort', onAbort);
  const deadline = Date.now() + options.timeoutMs;
  let failures = 0;
  connect();
  try {
    for (;;) {
      if (signal.aborted) throw permanentError(ErrorCode.Cancelled, 'stopped waiting for the GPU server');
      try {
        const result = await check();
        failures = 0;
        if (result !== 'waiting') return result;
      } catch (error) {
        if (!(error instanceof ServerUnreachable)) throw error;
        failures += 1;
        if (failures >= options.deadAfterFailures) return { kind: 'unreachable', error };
      }
      if (Date.now() > deadline) {
        throw permanentError(ErrorCode.BackendTimeout, 'The GPU server took far too long on this clip; nothing was charged.', { context: { promptId } });
      }
      const wait = socketOpen && failures === 0 ? options.pollMs * options.socketPollFactor : options.pollMs;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } finally {
    finished = true;
    signal.removeEventListener('abort', onAbort);
    if (reconnect) clearTimeout(reconnect);
    if (socket) {
      socket.removeAllListeners();
      socket.on('error', () => undefined);
      socket.terminate();
    }
  }
}
