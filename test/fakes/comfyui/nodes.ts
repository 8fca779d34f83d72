/**
 * The fake's `/object_info`: the node types the dreambot templates use, with their real input specs
 * (names, types, defaults, ranges; core ComfyUI nodes.py and comfy_extras/nodes_{wan,lt,video,custom_sampler}.py)
 * and the model files this pretend GPU box "has installed". Legacy nodes list combo choices as
 * `[[…choices], opts]`; schema-v3 nodes as `["COMBO", {options: […]}]`, as the real endpoint does.
 */
export interface NodeSpec {
  input: { required?: Record<string, unknown[]>; optional?: Record<string, unknown[]> };
  input_order: { required?: string[]; optional?: string[] };
  output: string[];
  output_is_list: boolean[];
  output_name: string[];
  name: string;
  display_name: string;
  description: string;
  python_module: string;
  category: string;
  output_node: boolean;
}

const MAX_RESOLUTION = 16384;
const SAMPLERS = ['euler', 'euler_ancestral', 'heun', 'dpm_2', 'dpmpp_2m', 'dpmpp_sde', 'uni_pc', 'uni_pc_bh2', 'lcm', 'res_multistep'];
const SCHEDULERS = ['simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal'];

export const installedModels = {
  diffusion_models: ['wan2.2_ti2v_5B_fp16.safetensors'],
  text_encoders: ['umt5_xxl_fp8_e4m3fn_scaled.safetensors', 't5xxl_fp16.safetensors'],
  vae: ['wan2.2_vae.safetensors'],
  checkpoints: ['ltx-video-2b-v0.9.5.safetensors'],
};

const int = (def: number, min: number, max: number, step = 1, extra: Record<string, unknown> = {}) => ['INT', { default: def, min, max, step, ...extra }];
const float = (def: number, min: number, max: number, step = 0.01) => ['FLOAT', { default: def, min, max, step }];
const combo = (options: string[], v3: boolean, def?: string) => (v3 ? ['COMBO', { options, default: def ?? options[0] }] : [options, def ? { default: def } : {}]);

function node(name: string, opts: {
  required: Record<string, unknown[]>; optional?: Record<string, unknown[]>; output: string[]; outputName?: string[];
  category: string; outputNode?: boolean; module?: string; display?: string;
}): NodeSpec {
  return {
    input: { required: opts.required, ...(opts.optional ? { optional: opts.optional } : {}) },
    input_order: { required: Object.keys(opts.required), ...(opts.optional ? { optional: Object.keys(opts.optional) } : {}) },
    output: opts.output,
    output_is_list: opts.output.map(() => false),
    output_name: opts.outputName ?? opts.output,
    name,
    display_name: opts.display ?? name,
    description: '',
    python_module: opts.module ?? 'nodes',
    category: opts.category,
    output_node: opts.outputNode ?? false,
  };
}

/** Builds the catalogue; `inputFiles` are the names in the input folder (LoadImage's choices). */
export function objectInfo(inputFiles: string[], missing: ReadonlySet<string> = new Set()): Record<string, NodeSpec> {
  const all: Record<string, NodeSpec> = {
    UNETLoader: node('UNETLoader', { required: { unet_name: combo(installedModels.diffusion_models, false), weight_dtype: combo(['default', 'fp8_e4m3fn', 'fp8_e4m3fn_fast', 'fp8_e5m2'], false) }, output: ['MODEL'], category: 'advanced/loaders', display: 'Load Diffusion Model' }),
    CLIPLoader: node('CLIPLoader', {
      required: { clip_name: combo(installedModels.text_encoders, false), type: combo(['stable_diffusion', 'stable_cascade', 'sd3', 'stable_audio', 'mochi', 'ltxv', 'pixart', 'cosmos', 'lumina2', 'wan', 'hidream', 'chroma', 'ace', 'omnigen2', 'qwen_image'], false) },
      optional: { device: combo(['default', 'cpu'], false) }, output: ['CLIP'], category: 'advanced/loaders', display: 'Load CLIP',
    }),
    VAELoader: node('VAELoader', { required: { vae_name: combo(installedModels.vae, false) }, output: ['VAE'], category: 'loaders', display: 'Load VAE' }),
    CheckpointLoaderSimple: node('CheckpointLoaderSimple', { required: { ckpt_name: combo(installedModels.checkpoints, false) }, output: ['MODEL', 'CLIP', 'VAE'], category: 'loaders', display: 'Load Checkpoint' }),
    ModelSamplingSD3: node('ModelSamplingSD3', { required: { model: ['MODEL'], shift: float(3, 0, 100) }, output: ['MODEL'], category: 'advanced/model', module: 'comfy_extras.nodes_model_advanced' }),
    CLIPTextEncode: node('CLIPTextEncode', { required: { text: ['STRING', { multiline: true, dynamicPrompts: true }], clip: ['CLIP'] }, output: ['CONDITIONING'], category: 'conditioning', display: 'CLIP Text Encode (Prompt)' }),
    LoadImage: node('LoadImage', { required: { image: [[...inputFiles].sort(), { image_upload: true }] }, output: ['IMAGE', 'MASK'], category: 'image', display: 'Load Image' }),
    KSampler: node('KSampler', {
      required: {
        model: ['MODEL'], seed: int(0, 0, 0xffffffffffffffff, 1, { control_after_generate: true }), steps: int(20, 1, 10000), cfg: float(8, 0, 100, 0.1),
        sampler_name: combo(SAMPLERS, false), scheduler: combo(SCHEDULERS, false), positive: ['CONDITIONING'], negative: ['CONDITIONING'],
        latent_image: ['LATENT'], denoise: float(1, 0, 1),
      }, output: ['LATENT'], category: 'sampling',
    }),
    VAEDecode: node('VAEDecode', { required: { samples: ['LATENT'], vae: ['VAE'] }, output: ['IMAGE'], category: 'latent', display: 'VAE Decode' }),
    Wan22ImageToVideoLatent: node('Wan22ImageToVideoLatent', {
      required: { vae: ['VAE'], width: int(1280, 32, MAX_RESOLUTION, 32), height: int(704, 32, MAX_RESOLUTION, 32), length: int(49, 1, MAX_RESOLUTION, 4), batch_size: int(1, 1, 4096) },
      optional: { start_image: ['IMAGE'] }, output: ['LATENT'], category: 'conditioning/inpaint', module: 'comfy_extras.nodes_wan',
    }),
    CreateVideo: node('CreateVideo', { required: { images: ['IMAGE'], fps: float(30, 1, 120, 1) }, optional: { audio: ['AUDIO'] }, output: ['VIDEO'], category: 'image/video', module: 'comfy_extras.nodes_video', display: 'Create Video' }),
    SaveVideo: node('SaveVideo', {
      required: { video: ['VIDEO'], filename_prefix: ['STRING', { default: 'video/ComfyUI' }], format: combo(['auto', 'mp4'], true), codec: combo(['auto', 'h264'], true) },
      output: [], category: 'image/video', outputNode: true, module: 'comfy_extras.nodes_video', display: 'Save Video',
    }),
    EmptyLTXVLatentVideo: node('EmptyLTXVLatentVideo', {
      required: { width: int(768, 64, MAX_RESOLUTION, 32), height: int(512, 64, MAX_RESOLUTION, 32), length: int(97, 1, MAX_RESOLUTION, 8), batch_size: int(1, 1, 4096) },
      output: ['LATENT'], category: 'latent/video/ltxv', module: 'comfy_extras.nodes_lt',
    }),
    LTXVImgToVideo: node('LTXVImgToVideo', {
      required: {
        positive: ['CONDITIONING'], negative: ['CONDITIONING'], vae: ['VAE'], image: ['IMAGE'], width: int(768, 64, MAX_RESOLUTION, 32),
        height: int(512, 64, MAX_RESOLUTION, 32), length: int(97, 9, MAX_RESOLUTION, 8), batch_size: int(1, 1, 4096), strength: float(1, 0, 1),
      }, output: ['CONDITIONING', 'CONDITIONING', 'LATENT'], outputName: ['positive', 'negative', 'latent'], category: 'conditioning/video_models', module: 'comfy_extras.nodes_lt',
    }),
    LTXVConditioning: node('LTXVConditioning', { required: { positive: ['CONDITIONING'], negative: ['CONDITIONING'], frame_rate: float(25, 0, 1000) }, output: ['CONDITIONING', 'CONDITIONING'], outputName: ['positive', 'negative'], category: 'conditioning/video_models', module: 'comfy_extras.nodes_lt' }),
    LTXVScheduler: node('LTXVScheduler', {
      required: { steps: int(20, 1, 10000), max_shift: float(2.05, 0, 100), base_shift: float(0.95, 0, 100), stretch: ['BOOLEAN', { default: true }], terminal: float(0.1, 0, 0.99) },
      optional: { latent: ['LATENT'] }, output: ['SIGMAS'], category: 'sampling/custom_sampling/schedulers', module: 'comfy_extras.nodes_lt',
    }),
    KSamplerSelect: node('KSamplerSelect', { required: { sampler_name: combo(SAMPLERS, false) }, output: ['SAMPLER'], category: 'sampling/custom_sampling/samplers', module: 'comfy_extras.nodes_custom_sampler' }),
    SamplerCustom: node('SamplerCustom', {
      required: {
        model: ['MODEL'], add_noise: ['BOOLEAN', { default: true }], noise_seed: int(0, 0, 0xffffffffffffffff, 1, { control_after_generate: true }), cfg: float(8, 0, 100, 0.1),
        positive: ['CONDITIONING'], negative: ['CONDITIONING'], sampler: ['SAMPLER'], sigmas: ['SIGMAS'], latent_image: ['LATENT'],
      }, output: ['LATENT', 'LATENT'], outputName: ['output', 'denoised_output'], category: 'sampling/custom_sampling', module: 'comfy_extras.nodes_custom_sampler',
    }),
  };
  for (const name of missing) delete all[name];
  return all;
}

/** Node classes whose execution the fake stretches over the prompt's time, reporting `progress` per step. */
export const SAMPLER_TYPES = new Set(['KSampler', 'SamplerCustom', 'KSamplerAdvanced', 'SamplerCustomAdvanced']);
