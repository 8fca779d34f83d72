import { rm } from 'node:fs/promises';
import { ErrorCode, permanentError } from '../errors.ts';
import { type MediaBinaries, runFfmpeg } from './ffmpeg.ts';
import type { CameraMove } from './sizes.ts';

/**
 * The offline "preview" backend's renderer: a real H.264 clip of the requested size and length,
 * made from a still (the start image, or a title card of the prompt) moved by a virtual camera.
 * Everything here has to run on the 2018 ffmpeg 4.1 the installer package ships: no xfade, no
 * per-frame scale/crop sizes, so motion is zoompan and the crossfade is overlay + alpha fade.
 */
export interface PreviewSpec {
  width: number;
  height: number;
  durationS: number;
  fps?: number;
  camera: CameraMove;
  startImage?: string;
  endImage?: string;
  title?: string;
  fontPath: string;
  out: string;
}

/**
 * Escapes a value twice: once for the filter's own `key=value:key=value` parser (\ ' :), then for
 * the filtergraph parser around it (\ ' [ ] , ;). Each level strips one layer of backslashes.
 */
export function escapeFilterValue(value: string): string {
  return value.replace(/[\\':]/g, '\\$&').replace(/[\\'[\],;]/g, '\\$&');
}

/** Ease in and out, so moves start and stop gently instead of jerking at the cut. */
const eased = (p: string) => `(${p}*${p}*(3-2*${p}))`;
const ORBIT_ROLL_RAD = 0.04;

interface Motion {
  zoom: string;
  /** Where the window sits in the horizontal slack, 0 = left edge, 1 = right edge. */
  fx: string;
  fy: string;
  roll?: string;
}

function motion(camera: CameraMove, e: string): Motion {
  const centred = { fx: '0.5', fy: '0.5' };
  switch (camera) {
    case 'static': return { zoom: '1', ...centred };
    case 'push_in': return { zoom: `(1+0.25*${e})`, ...centred };
    case 'pull_out': return { zoom: `(1.25-0.25*${e})`, ...centred };
    // The camera turns left, so the window over the still slides towards its left edge.
    case 'pan_left': return { zoom: '1.2', fx: `(1-${e})`, fy: '0.5' };
    case 'pan_right': return { zoom: '1.2', fx: e, fy: '0.5' };
    case 'crane_up': return { zoom: '1.2', fx: '0.5', fy: `(1-${e})` };
    case 'crane_down': return { zoom: '1.2', fx: '0.5', fy: e };
    case 'orbit_left': return { zoom: `(1.15+0.1*${e})`, fx: `(0.8-0.6*${e})`, fy: '0.5', roll: `(${ORBIT_ROLL_RAD}*(1-2*${e}))` };
    case 'orbit_right': return { zoom: `(1.15+0.1*${e})`, fx: `(0.2+0.6*${e})`, fy: '0.5', roll: `(${ORBIT_ROLL_RAD}*(2*${e}-1))` };
  }
}

/** Greedy word wrap by code points; words longer than a line (URLs) are cut. */
export function wrapText(text: string, maxChars: number): string[] {
  const lines: string[] = [];
  const length = (s: string) => [...s].length;
  for (const paragraph of text.split('\n')) {
    let line = '';
    const flush = () => {
      if (line) lines.push(line);
      line = '';
    };
    for (const word of paragraph.split(' ').filter(Boolean)) {
      const chars = [...word];
      if (chars.length > maxChars) {
        flush();
        for (let i = 0; i < chars.length; i += maxChars) lines.push(chars.slice(i, i + maxChars).join(''));
        line = lines.pop() ?? '';
      } else if (length(line ? `${line} ${word}` : word) <= maxChars) {
        line = line ? `${line} ${word}` : word;
      } else {
        flush();
        line = word;
      }
    }
    flush();
  }
  return lines;
}

/**
 * A dark gradient card with the prompt and a "PREVIEW" tag, drawn at the supersampled size so the
 * text stays sharp while zoompan scales it. Text stays inside the middle of the card, which every
 * camera move keeps in view (pans and cranes at 1.2× crop up to 17% off one side).
 */
function titleCard(spec: PreviewSpec, cw: number, ch: number): string {
  const font = escapeFilterValue(spec.fontPath);
  const prompt = (spec.title ?? '').replace(/\r\n?/g, '\n').replace(/[\t\v\f\u0000-\u0009\u000b-\u001f\u007f]/g, ' ');
  const unit = Math.sqrt(cw * ch);
  const availW = cw * 0.56;
  const availH = ch * 0.46;
  // Largest size at which the whole prompt fits; a very long one is cut at the smallest size.
  let size = 0;
  let lines: string[] = [];
  let maxLines = 1;
  for (const factor of [0.055, 0.045, 0.037, 0.03, 0.025]) {
    size = Math.round(unit * factor);
    maxLines = Math.max(1, Math.floor(availH / (size * 1.3)));
    // 0.62 em is about the average advance of DejaVu Sans Bold lowercase; capitals are wider still.
    lines = wrapText(prompt, Math.max(4, Math.floor(availW / (size * 0.62))));
    if (lines.length <= maxLines) break;
  }
  if (lines.length > maxLines) lines = [...lines.slice(0, maxLines - 1), `${lines[maxLines - 1] ?? ''}…`];
  const lineH = Math.round(size * 1.3);
  const top = Math.round(ch * 0.53 - (lines.length * lineH) / 2);
  // y is given as a baseline: drawtext's own y is the top of the tallest glyph in that line, so
  // "veryvery" would sit higher than "[done]" and the line spacing would wobble.
  const text = (t: string, fs: number, baseline: number, extra = '') =>
    `drawtext=fontfile=${font}:expansion=none:text=${escapeFilterValue(t)}:fontsize=${fs}` +
    `:fontcolor=white:x=(w-text_w)/2:y=${baseline}-ascent${extra}`;
  const draws = lines.map((line, i) =>
    text(line, size, top + i * lineH + size, `:shadowx=${Math.ceil(size / 24)}:shadowy=${Math.ceil(size / 24)}:shadowcolor=black@0.5`),
  );
  const tag = Math.round(unit * 0.022);
  draws.unshift(text('PREVIEW', tag, Math.round(ch * 0.2 + tag), `:fontcolor=white@0.85:box=1:boxcolor=black@0.4:boxborderw=${Math.round(tag / 2)}`));
  // A tiny gradient scaled up smoothly is far cheaper than geq over millions of pixels.
  return [
    'color=c=black:s=64x36:r=1:d=1',
    'format=rgb24',
    "geq=r='14+22*X/W':g='16+14*Y/H':b='46+50*(1-Y/H)'",
    `scale=${cw}:${ch}:flags=bicubic`,
    ...draws,
  ].join(',');
}

const even = (n: number) => Math.ceil(n / 2) * 2;

/** The complete ffmpeg argv (without the binary). Pure: the same spec always gives the same argv. */
export function buildPreviewArgs(spec: PreviewSpec): string[] {
  const fps = spec.fps ?? 24;
  const { width: w, height: h } = spec;
  if (!(Number.isInteger(w) && Number.isInteger(h) && w > 0 && h > 0 && w % 2 === 0 && h % 2 === 0)) {
    throw permanentError(ErrorCode.Internal, `preview size must be positive even integers, got ${w}x${h}`);
  }
  if (!(spec.durationS > 0 && fps > 0)) throw permanentError(ErrorCode.Internal, 'preview duration and fps must be positive');
  const frames = Math.round(spec.durationS * fps);
  const m = motion(spec.camera, eased(`(on/${Math.max(1, frames - 1)})`));

  // Rolling needs a margin so no black corner shows: the frame's bounding box at the largest angle.
  const sin = Math.sin(ORBIT_ROLL_RAD);
  const cos = Math.cos(ORBIT_ROLL_RAD);
  const margin = m.roll ? Math.max((w * cos + h * sin) / w, (w * sin + h * cos) / h) : 1;
  const zw = even(w * margin);
  const zh = even(h * margin);
  // zoompan crops whole input pixels; at 2× supersampling a step is half an output pixel, which
  // reads as smooth. Static needs none, and 4k would need 8k intermediates for little gain.
  const ss = spec.camera === 'static' || Math.max(zw, zh) > 2048 ? 1 : 2;
  const cw = zw * ss;
  const ch = zh * ss;
  // yuv444p: in 4:2:0 zoompan rounds x to even pixels, which doubles the jitter.
  const zoompan =
    `format=yuv444p,zoompan=z='${m.zoom}':x='(iw-iw/zoom)*${m.fx}':y='(ih-ih/zoom)*${m.fy}'` +
    `:d=${frames}:s=${zw}x${zh}:fps=${fps}`;
  // trim: an animated GIF or a video given as an image contributes only its first frame.
  const still = (input: number) =>
    `[${input}:v]trim=end_frame=1,scale=${cw}:${ch}:force_original_aspect_ratio=increase,crop=${cw}:${ch},setsar=1`;

  const inputs: string[] = [];
  const chains: string[] = [];
  // file: keeps a path from ever being read as another protocol (http:, concat:, pipe:).
  const input = (file: string) => ['-i', `file:${file}`];
  if (spec.startImage) {
    inputs.push(...input(spec.startImage));
    chains.push(`${still(0)},${zoompan}[a]`);
  } else {
    chains.push(`${titleCard(spec, cw, ch)},${zoompan}[a]`);
  }
  let last = '[a]';
  if (spec.endImage) {
    inputs.push(...input(spec.endImage));
    const t0 = (spec.durationS * 0.35).toFixed(3);
    const dt = (spec.durationS * 0.4).toFixed(3);
    // ffmpeg 4.1 has no xfade: the end still, moved by the same camera, fades in as an overlay.
    chains.push(`${still(inputs.length / 2 - 1)},${zoompan},format=yuva444p,fade=t=in:st=${t0}:d=${dt}:alpha=1[b]`);
    chains.push(`[a][b]overlay=format=yuv444:shortest=1[x]`);
    last = '[x]';
  }
  const roll = m.roll
    ? `rotate=a='${m.roll.replaceAll('on/', 'n/')}':ow=${w}:oh=${h}:c=black,`
    : '';
  chains.push(`${last}${roll}setsar=1,format=yuv420p[v]`);

  return [
    '-hide_banner', '-v', 'error', '-y',
    ...inputs,
    '-filter_complex', chains.join(';'),
    '-map', '[v]', '-an',
    '-frames:v', String(frames),
    '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '20', '-pix_fmt', 'yuv420p',
    '-threads', '2',
    '-movflags', '+faststart',
    '-f', 'mp4', spec.out,
  ];
}

export interface RenderOptions {
  signal?: AbortSignal;
  /** Fraction done, 0 to 1. */
  onProgress?: (fraction: number) => void;
}

export async function renderPreview(bins: MediaBinaries, spec: PreviewSpec, opts: RenderOptions = {}): Promise<void> {
  const args = buildPreviewArgs(spec);
  const report = opts.onProgress;
  try {
    await runFfmpeg(bins.ffmpeg, args, {
      signal: opts.signal,
      onProgress: report && ((s) => report(Math.min(1, Math.max(0, s / spec.durationS)))),
    });
  } catch (error) {
    // A half-written MP4 has no moov atom and would only confuse whoever finds it.
    await rm(spec.out, { force: true });
    throw error;
  }
  report?.(1);
}
