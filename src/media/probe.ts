import { open, stat } from 'node:fs/promises';
import { ErrorCode, permanentError } from '../errors.ts';
import { runFfprobeJson } from './ffmpeg.ts';

export interface ProbeResult {
  durationS: number;
  width: number;
  height: number;
  codec: string;
  pixFmt: string;
  fps: number;
  sizeBytes: number;
  hasAudio: boolean;
  formatName: string;
  /** `moov` precedes `mdat`, so a player can start before the whole file has arrived. */
  faststart: boolean;
}

interface FfprobeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  pix_fmt?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
}

interface FfprobeOutput {
  streams?: FfprobeStream[];
  format?: { duration?: string; format_name?: string };
}

/** "24/1", "30000/1001"; "0/0" (ffprobe's "unknown") gives 0. */
function parseRate(rate: string | undefined): number {
  if (!rate) return 0;
  const [num, den] = rate.split('/').map(Number);
  if (num === undefined || !Number.isFinite(num)) return 0;
  if (den === undefined) return num;
  return den > 0 && Number.isFinite(den) ? num / den : 0;
}

function parseSeconds(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export async function probe(ffprobe: string, file: string, opts: { signal?: AbortSignal } = {}): Promise<ProbeResult> {
  const raw = (await runFfprobeJson(
    ffprobe,
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', file],
    opts,
  )) as FfprobeOutput;
  const streams = raw.streams ?? [];
  const video = streams.find((s) => s.codec_type === 'video');
  if (!video) throw permanentError(ErrorCode.Internal, `no video stream in ${file}`);
  const [{ size }, faststart] = await Promise.all([stat(file), moovBeforeMdat(file)]);
  // avg_frame_rate is what the clip plays at; r_frame_rate is a guess that can be a timebase.
  const fps = parseRate(video.avg_frame_rate) || parseRate(video.r_frame_rate);
  return {
    durationS: parseSeconds(raw.format?.duration) ?? parseSeconds(video.duration) ?? 0,
    width: video.width ?? 0,
    height: video.height ?? 0,
    codec: video.codec_name ?? 'unknown',
    pixFmt: video.pix_fmt ?? 'unknown',
    fps,
    sizeBytes: size,
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
    formatName: raw.format?.format_name ?? 'unknown',
    faststart,
  };
}

/**
 * Walks the top-level ISO-BMFF boxes (size32, type4[, size64]) until `moov` or `mdat` shows up.
 * ffprobe does not report box order, and only the headers are read, never the media data.
 */
export async function moovBeforeMdat(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const header = Buffer.alloc(16);
    let offset = 0;
    // A real file has a handful of top-level boxes; the cap guards against a corrupt loop.
    for (let i = 0; i < 1024 && offset + 8 <= fileSize; i++) {
      const { bytesRead } = await handle.read(header, 0, 16, offset);
      if (bytesRead < 8) return false;
      let boxSize = header.readUInt32BE(0);
      const type = header.toString('latin1', 4, 8);
      if (type === 'moov') return true;
      if (type === 'mdat') return false;
      if (boxSize === 1) {
        if (bytesRead < 16) return false;
        boxSize = Number(header.readBigUInt64BE(8));
      } else if (boxSize === 0) {
        return false; // box runs to end of file, and it was neither moov nor mdat
      }
      if (boxSize < 8) return false;
      offset += boxSize;
    }
    return false;
  } finally {
    await handle.close();
  }
}
