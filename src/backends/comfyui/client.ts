import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AppError, ErrorCode, permanentError, transientError } from '../../errors.ts';
import {
  historyResponse, objectInfoResponse, promptAccepted, promptRejected, queueResponse, uploadResponse,
  type HistoryEntry, type ObjectInfo, type OutputFile, type PromptRejection,
} from './schemas.ts';

/**
 * A thin client for one ComfyUI server: the eight routes dreambot uses, each response parsed with zod.
 * A server that cannot be reached (refused, reset, timed out) throws `ServerUnreachable`, which the pool
 * reads as "take it out of rotation"; anything else is an ordinary AppError.
 */
export class ServerUnreachable extends AppError {
  constructor(readonly server: string, detail: string, cause?: unknown) {
    super(ErrorCode.BackendUnavailable, `ComfyUI server ${server} is unreachable: ${detail}`, { kind: 'transient', context: { server }, cause });
    this.name = 'ServerUnreachable';
  }
}

/** The server answered 400 to POST /prompt: the graph failed its validation. */
export class PromptRefused extends AppError {
  constructor(readonly server: string, readonly body: PromptRejection) {
    super(ErrorCode.BackendFailed, `ComfyUI ${server} refused the workflow: ${describeRejection(body)}`, { kind: 'permanent', context: { server, error: body.error } });
    this.name = 'PromptRefused';
  }
}

export function describeRejection(body: PromptRejection): string {
  const error = typeof body.error === 'string' ? body.error : `${body.error.message}${body.error.details ? ` (${body.error.details})` : ''}`;
  const nodes = Object.entries(body.node_errors ?? {}).map(([id, n]) =>
    `node ${id} ${n.class_type}: ${n.errors.map((e) => `${e.message}${e.details ? ` (${e.details})` : ''}`).join('; ')}`);
  return [error, ...nodes].join('; ');
}

export interface Queued {
  running: string[];
  pending: string[];
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

function networkCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && NETWORK_CODES.has(code)) return code;
    if ((e as Error).name === 'TimeoutError') return 'ETIMEDOUT';
  }
  return undefined;
}

export class ComfyClient {
  constructor(readonly url: string, private readonly timeoutMs = 10_000) {}

  private async call(route: string, init: RequestInit & { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const timeout = AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs);
    const signal = init.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
    try {
      return await fetch(new URL(route, this.url), { ...init, signal });
    } catch (error) {
      if (init.signal?.aborted) throw permanentError(ErrorCode.Cancelled, 'cancelled', { cause: error });
      const code = networkCode(error);
      if (code) throw new ServerUnreachable(this.url, `${code} on ${route.split('?')[0]}`, error);
      throw transientError(ErrorCode.BackendFailed, `ComfyUI ${this.url} ${route}: ${(error as Error).message}`, { cause: error });
    }
  }

  private async json(route: string, init: RequestInit & { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
    const res = await this.call(route, init);
    // A 5xx (often a proxy in front of a dead process) is a server that cannot serve, not a bad request.
    if (res.status >= 500) {
      await res.body?.cancel();
      throw new ServerUnreachable(this.url, `${route.split('?')[0]} answered ${res.status}`);
    }
    if (!res.ok) {
      const text = await res.text().catch(() => '');
      throw transientError(ErrorCode.BackendFailed, `ComfyUI ${this.url} ${route.split('?')[0]} answered ${res.status} ${text.slice(0, 200)}`, { context: { status: res.status } });
    }
    try {
      return await res.json();
    } catch (error) {
      throw new ServerUnreachable(this.url, `${route.split('?')[0]} sent a broken body`, error);
    }
  }

  /** The health probe: any answer but a JSON 200 counts as unhealthy. */
  async systemStats(timeoutMs = 3000): Promise<unknown> {
    return this.json('system_stats', { timeoutMs });
  }

  async objectInfo(): Promise<ObjectInfo> {
    return objectInfoResponse.parse(await this.json('object_info', { timeoutMs: 30_000 }));
  }

  async queue(): Promise<Queued> {
    const q = queueResponse.parse(await this.json('queue'));
    return { running: q.queue_running.map((item) => String(item[1])), pending: q.queue_pending.map((item) => String(item[1])) };
  }

  /** The finished prompt's entry, or undefined while it is queued, running or unknown. */
  async history(promptId: string): Promise<HistoryEntry | undefined> {
    const all = historyResponse.parse(await this.json(`history/${encodeURIComponent(promptId)}`));
    return all[promptId];
  }

  /** POST /prompt; returns the id the server runs it under (older servers ignore a client-chosen one). */
  async submit(body: { prompt: Record<string, unknown>; client_id: string; prompt_id: string }): Promise<string> {
    const res = await this.call('prompt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const payload: unknown = await res.json().catch(() => undefined);
    if (res.status === 400) {
      const parsed = promptRejected.safeParse(payload);
      if (parsed.success) throw new PromptRefused(this.url, parsed.data);
    }
    if (!res.ok) throw transientError(ErrorCode.BackendFailed, `ComfyUI ${this.url} POST /prompt answered ${res.status}`, { context: { status: res.status } });
    return promptAccepted.parse(payload).prompt_id;
  }

  /** Multipart upload into the server's input folder, overwriting: the name is derived from the prompt id. */
  async uploadImage(file: string, name: string): Promise<string> {
    const form = new FormData();
    form.append('image', new Blob([await readFile(file)]), name);
    form.append('type', 'input');
    form.append('overwrite', 'true');
    const res = await this.call('upload/image', { method: 'POST', body: form, timeoutMs: 60_000 });
    if (!res.ok) throw transientError(ErrorCode.BackendFailed, `ComfyUI ${this.url} /upload/image answered ${res.status}`);
    const uploaded = uploadResponse.parse(await res.json());
    return uploaded.subfolder ? `${uploaded.subfolder}/${uploaded.name}` : uploaded.name;
  }

  /** Interrupts only if `promptId` is the one running (the server checks too; older servers do not). */
  async interrupt(promptId: string): Promise<void> {
    const res = await this.call('interrupt', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt_id: promptId }) });
    await res.body?.cancel();
  }

  async deleteQueued(promptId: string): Promise<void> {
    const res = await this.call('queue', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ delete: [promptId] }) });
    await res.body?.cancel();
  }

  /** Streams an output file from /view to `destination`. */
  async download(file: OutputFile, destination: string, signal?: AbortSignal): Promise<void> {
    const query = new URLSearchParams({ filename: file.filename, subfolder: file.subfolder ?? '', type: file.type ?? 'output' });
    const res = await this.call(`view?${query.toString()}`, { timeoutMs: 300_000, ...(signal ? { signal } : {}) });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw transientError(ErrorCode.BackendFailed, `ComfyUI ${this.url} /view ${path.basename(file.filename)} answered ${res.status}`, { context: { status: res.status } });
    }
    try {
      await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), createWriteStream(destination));
    } catch (error) {
      if (signal?.aborted) throw permanentError(ErrorCode.Cancelled, 'cancelled', { cause: error });
      throw new ServerUnreachable(this.url, `download of ${file.filename} broke off`, error);
    }
  }

  /** The WebSocket address for a client id (http→ws, https→wss). */
  socketUrl(clientId: string): string {
    const url = new URL(`ws?clientId=${encodeURIComponent(clientId)}`, this.url);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }
}
