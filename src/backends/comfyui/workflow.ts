import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError } from '../../config.ts';
import { durationSeconds, frameSize, type CameraMove } from '../../media/sizes.ts';
import type { StoredRequest } from '../../request.ts';
import type { ObjectInfo } from './schemas.ts';

/**
 * A workflow template: an API-format ComfyUI graph ("Save (API)") plus a mapping file naming the slots
 * dreambot fills (node id + input) and the rules of the model (fps, size multiple, frame count rule).
 * Templates live in workflows/<name>.json with workflows/<name>.map.json beside them.
 */
export const WORKFLOWS_DIR = fileURLToPath(new URL('../../../workflows/', import.meta.url));

const slot = z.object({ node: z.string(), input: z.string() });
const slots = z.union([slot, z.array(slot).min(1)]).transform((s) => (Array.isArray(s) ? s : [s]));
export type Slot = z.infer<typeof slot>;

const mappingSchema = z.object({
  name: z.string(),
  description: z.string().optional(),
  graph: z.string(),
  /** A second graph for image-to-video, with the same node ids for every slot; else the start image node is removed for text-to-video. */
  imageGraph: z.string().optional(),
  fps: z.number().positive(),
  sizeMultiple: z.number().int().positive(),
  /** frames = step·n + offset (Wan 4n+1, LTX-Video 8n+1) */
  frameRule: z.object({ step: z.number().int().positive(), offset: z.number().int().min(0) }),
  slots: z.object({
    prompt: slots, negativePrompt: slots.optional(), startImage: slot.optional(), seed: slots,
    width: slots, height: slots, frames: slots, fps: slots.optional(),
  }),
  /** The saver node, and the key its files appear under in /history outputs (core SaveVideo: "images"). */
  output: z.object({ node: z.string(), key: z.string().default('images') }),
});
export type WorkflowMapping = z.infer<typeof mappingSchema>;

const graphSchema = z.record(z.string(), z.object({
  class_type: z.string(),
  inputs: z.record(z.string(), z.unknown()),
  _meta: z.object({ title: z.string().optional() }).optional(),
}));
export type Graph = z.infer<typeof graphSchema>;

/** What will actually be rendered for a request: sizes rounded to the model's rules. */
export interface RenderPlan {
  width: number;
  height: number;
  frames: number;
  fps: number;
}

export interface FillValues {
  prompt: string;
  seed: number;
  plan: RenderPlan;
  /** The start image's name on the server (after /upload/image); absent for text-to-video. */
  image?: string;
}

const cameraPhrases: Record<CameraMove, string> = {
  static: 'static camera',
  push_in: 'the camera slowly pushes in',
  pull_out: 'the camera slowly pulls back',
  pan_left: 'the camera pans left',
  pan_right: 'the camera pans right',
  orbit_left: 'the camera orbits left around the subject',
  orbit_right: 'the camera orbits right around the subject',
  crane_up: 'the camera cranes up',
  crane_down: 'the camera cranes down',
};

const isLink = (value: unknown): value is [string, number] => Array.isArray(value) && value.length === 2 && typeof value[0] === 'string';

export class Workflow {
  private constructor(readonly mapping: WorkflowMapping, readonly textGraph: Graph, readonly imageGraph: Graph | undefined) {}

  get name(): string {
    return this.mapping.name;
  }

  /** Loads and cross-checks a template; a missing file or a slot that names no node is a ConfigError. */
  static async load(name: string, dir = WORKFLOWS_DIR): Promise<Workflow> {
    if (!/^[\w.-]+$/.test(name)) throw new ConfigError(`COMFYUI_WORKFLOW=${name} is not a workflow name`);
    const read = async (file: string) => {
      try {
        return JSON.parse(await readFile(path.join(dir, file), 'utf8')) as unknown;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`workflows/${file}: ${(error as Error).message}`);
        const names = (await readdir(dir).catch(() => [])).filter((f) => f.endsWith('.map.json')).map((f) => f.slice(0, -'.map.json'.length));
        throw new ConfigError(`COMFYUI_WORKFLOW=${name}: workflows/${file} does not exist. Available: ${names.join(', ') || 'none'}.`);
      }
    };
    const parsed = mappingSchema.safeParse(await read(`${name}.map.json`));
    if (!parsed.success) throw new ConfigError(`workflows/${name}.map.json is invalid: ${parsed.error.issues[0]?.message ?? 'bad shape'}`);
    const mapping = parsed.data;
    const graph = (file: string) => read(file).then((raw) => {
      const g = graphSchema.safeParse(raw);
      if (!g.success) throw new ConfigError(`workflows/${file} is not an API-format graph (export it with "Save (API)")`);
      return g.data;
    });
    const workflow = new Workflow(mapping, await graph(mapping.graph), mapping.imageGraph ? await graph(mapping.imageGraph) : undefined);
    workflow.checkSlots();
    return workflow;
  }

  private checkSlots(): void {
    const { slots: s, output } = this.mapping;
    const graphs = [['graph', this.textGraph], ['imageGraph', this.imageGraph]] as const;
    for (const [label, graph] of graphs) {
      if (!graph) continue;
      const missing = (where: string) => new ConfigError(`workflows/${this.name}.map.json: ${where} is not in the ${label}`);
      for (const [key, value] of Object.entries(s)) {
        if (key === 'startImage' || value === undefined) continue;
        for (const one of value as Slot[]) if (!graph[one.node] || !(one.input in graph[one.node]!.inputs)) throw missing(`slot ${key} (node ${one.node}, input ${one.input})`);
      }
      if (!graph[output.node]) throw missing(`output node ${output.node}`);
    }
    const imageIn = this.imageGraph ?? this.textGraph;
    if (s.startImage && imageIn[s.startImage.node]?.class_type !== 'LoadImage') {
      throw new ConfigError(`workflows/${this.name}.map.json: startImage must name a LoadImage node`);
    }
  }

  get acceptsImage(): boolean {
    return this.mapping.slots.startImage !== undefined;
  }

  /** Every node type the templates use, with a node id that uses it. */
  nodeTypes(): Map<string, string> {
    const types = new Map<string, string>();
    for (const graph of [this.textGraph, this.imageGraph]) {
      for (const [id, node] of Object.entries(graph ?? {})) if (!types.has(node.class_type)) types.set(node.class_type, id);
    }
    return types;
  }

  /**
   * Problems that make this server unable to run the templates: node types it lacks, and model files
   * (combo choices) it does not have. Empty when all is well.
   */
  problems(info: ObjectInfo): string[] {
    const out: string[] = [];
    for (const [type, id] of this.nodeTypes()) {
      if (!info[type]) out.push(`node type "${type}" (node ${id}) is missing`);
    }
    const image = this.mapping.slots.startImage?.node;
    for (const graph of [this.textGraph, this.imageGraph]) {
      for (const [id, node] of Object.entries(graph ?? {})) {
        const spec = info[node.class_type];
        if (!spec || id === image) continue;
        for (const [input, value] of Object.entries(node.inputs)) {
          if (typeof value !== 'string') continue;
          const choices = comboChoices(spec.input.required?.[input] ?? spec.input.optional?.[input]);
          if (choices && !choices.includes(value)) out.push(`"${value}" is not among ${node.class_type}.${input} choices (node ${id}): is the model file installed?`);
        }
      }
    }
    return [...new Set(out)];
  }

  /** Sizes and frame counts the model accepts, nearest to what was asked. */
  plan(request: Pick<StoredRequest, 'aspect' | 'resolution' | 'duration'>): RenderPlan {
    const { fps, sizeMultiple: m, frameRule } = this.mapping;
    const size = frameSize(request.aspect, request.resolution);
    // Nearest multiple, ties down (720 → 704: Wan's native 1280×704, and never more pixels than asked).
    const round = (n: number) => Math.max(m, Math.ceil(n / m - 0.5) * m);
    const target = durationSeconds(request.duration) * fps;
    const n = Math.max(1, Math.round((target - frameRule.offset) / frameRule.step));
    return { width: round(size.width), height: round(size.height), frames: n * frameRule.step + frameRule.offset, fps };
  }

  /** The prompt text: the request's words, plus the camera move as words (these models take no camera input). */
  promptText(request: Pick<StoredRequest, 'prompt' | 'camera' | 'operation'>): string {
    const base = request.prompt.trim() || (request.operation === 'extend' ? 'the scene continues naturally' : '');
    return request.camera ? `${base}${base ? ', ' : ''}${cameraPhrases[request.camera]}` : base;
  }

  /** A filled copy of the right graph. Without an image and without an image graph, the LoadImage node and its links go. */
  build(values: FillValues): Graph {
    const { slots: s } = this.mapping;
    const source = values.image && this.imageGraph ? this.imageGraph : this.textGraph;
    const graph = structuredClone(source);
    const set = (targets: Slot[] | undefined, value: unknown) => {
      for (const t of targets ?? []) graph[t.node]!.inputs[t.input] = value;
    };
    set(s.prompt, values.prompt);
    set(s.seed, values.seed);
    set(s.width, values.plan.width);
    set(s.height, values.plan.height);
    set(s.frames, values.plan.frames);
    set(s.fps, values.plan.fps);
    if (values.image) {
      if (!s.startImage) throw new ConfigError(`workflow ${this.name} has no start image slot`);
      set([s.startImage], values.image);
    } else if (s.startImage && graph[s.startImage.node]) {
      const gone = s.startImage.node;
      delete graph[gone];
      for (const node of Object.values(graph)) {
        for (const [input, value] of Object.entries(node.inputs)) if (isLink(value) && value[0] === gone) delete node.inputs[input];
      }
    }
    return graph;
  }
}

/** Legacy combos are `[[choices…], opts]`; schema-v3 ones are `["COMBO", {options: […]}]`. */
function comboChoices(spec: unknown[] | undefined): string[] | undefined {
  if (!spec) return undefined;
  const [type, options] = spec;
  if (Array.isArray(type)) return type.map(String);
  if (type === 'COMBO' && options && typeof options === 'object' && Array.isArray((options as { options?: unknown }).options)) {
    return ((options as { options: unknown[] }).options).map(String);
  }
  return undefined;
}
