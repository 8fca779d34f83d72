import { createHash } from 'node:crypto';

/**
 * Names derived from the generation id, so every process (and every retry after a crash) computes the
 * same ones: the ComfyUI prompt id, the WebSocket client id, the seed, the uploaded image's file name.
 */

/** dreambot's own UUIDv5 namespace (a fixed random UUID); only its stability matters. */
export const PROMPT_NAMESPACE = '6f1d3c52-8a4e-4f0b-9d27-3b5e8c1a7f90';

/** RFC 9562 UUIDv5 (SHA-1, name-based), lowercase canonical form, as ComfyUI requires of a prompt_id. */
export function uuidv5(name: string, namespace: string = PROMPT_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new Error(`not a UUID: ${namespace}`);
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function promptIdFor(generationId: string): string {
  return uuidv5(`generation:${generationId}`);
}

/** Execution messages go only to the client that submitted; one per prompt lets a resumer reconnect as it. */
export function clientIdFor(promptId: string): string {
  return `dreambot-${promptId}`;
}

/** A stable seed per generation (48 bits: exact in a JS number, well inside KSampler's 64-bit range). */
export function seedFor(generationId: string): number {
  return createHash('sha256').update(`seed:${generationId}`).digest().readUIntBE(0, 6);
}

/** Where a prompt runs: the prompt id on one server. Stored as the generation's backend handle. */
export interface PromptRef {
  promptId: string;
  server: string;
}

export function encodeHandle(ref: PromptRef): string {
  return `${ref.promptId}@${ref.server}`;
}

export function decodeHandle(handle: string): PromptRef {
  const at = handle.indexOf('@');
  if (at <= 0) throw new Error(`not a comfyui handle: ${handle}`);
  return { promptId: handle.slice(0, at), server: handle.slice(at + 1) };
}

/** Short, stable key material for a server URL (Redis key names stay short and free of URL syntax). */
export function serverKey(url: string): string {
  return createHash('sha1').update(url).digest('hex').slice(0, 16);
}
