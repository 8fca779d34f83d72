import { z } from 'zod';

/**
 * The shapes of ComfyUI's answers, as server.py and execution.py write them (Comfy-Org/ComfyUI master).
 * Only what dreambot reads is declared; unknown keys pass through untouched.
 */

/** `[number, prompt_id, prompt, extra_data, outputs_to_execute]` */
const queueItem = z.array(z.unknown()).min(2);

export const queueResponse = z.object({
  queue_running: z.array(queueItem),
  queue_pending: z.array(queueItem),
});

export const outputFile = z.object({
  filename: z.string().min(1),
  subfolder: z.string().optional(),
  type: z.string().optional(),
});
export type OutputFile = z.infer<typeof outputFile>;

/** `status.messages` holds `[event, data]` pairs; data carries `timestamp` in ms since execution.py's add_message. */
export const historyEntry = z.object({
  prompt: z.array(z.unknown()).optional(),
  outputs: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  status: z.object({
    status_str: z.string(),
    completed: z.boolean(),
    messages: z.array(z.tuple([z.string(), z.record(z.string(), z.unknown())])).default([]),
  }).nullable().optional(),
});
export type HistoryEntry = z.infer<typeof historyEntry>;
export const historyResponse = z.record(z.string(), historyEntry);

export const promptAccepted = z.object({ prompt_id: z.string(), number: z.number().optional() });

const validationError = z.object({ type: z.string(), message: z.string(), details: z.string().optional() });
export const promptRejected = z.object({
  error: z.union([z.string(), validationError]),
  // `{}` from current servers, `[]` from older ones.
  node_errors: z.record(z.string(), z.object({ errors: z.array(validationError), class_type: z.string() })).catch({}).optional(),
});
export type PromptRejection = z.infer<typeof promptRejected>;

export const uploadResponse = z.object({ name: z.string(), subfolder: z.string().default(''), type: z.string().default('input') });

/**
 * `/object_info`: per class, `input.required` / `input.optional` map names to `[type, options?]`, where
 * type is a string ("INT", "MODEL", "COMBO") or, for legacy combos, the list of choices itself.
 */
const inputSpec = z.array(z.unknown()).min(1);
export const nodeInfo = z.object({
  input: z.object({
    required: z.record(z.string(), inputSpec).optional(),
    optional: z.record(z.string(), inputSpec).optional(),
  }).default({}),
  output: z.array(z.unknown()).default([]),
  output_node: z.boolean().optional(),
});
export type NodeInfo = z.infer<typeof nodeInfo>;
export const objectInfoResponse = z.record(z.string(), nodeInfo);
export type ObjectInfo = z.infer<typeof objectInfoResponse>;

/** A WebSocket text frame: `{type, data}`. Binary frames (previews) are ignored. */
export const socketMessage = z.object({ type: z.string(), data: z.record(z.string(), z.unknown()).default({}) });
export type SocketMessage = z.infer<typeof socketMessage>;
