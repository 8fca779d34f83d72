import { createFile, Log, MP4BoxBuffer } from 'mp4box';

export interface Mp4Info {
  durationS: number;
  width: number;
  height: number;
}

Log.setLogLevel(() => undefined);

/**
 * Reads duration and frame size from an MP4's `moov` in-process with mp4box. The worker needs these for
 * every finished clip; spawning ffprobe for each costs a process per clip, which shows when a burst of
 * clips finishes together (bench/luma-overhead). Returns null when the bytes are not a readable MP4, and
 * the caller falls back to ffprobe, which also says why.
 */
export function mp4Info(data: Buffer): Mp4Info | null {
  let info: Mp4Info | null = null;
  try {
    const file = createFile();
    file.onReady = (movie) => {
      const video = movie.videoTracks[0];
      if (!video || !movie.timescale) return;
      info = { durationS: movie.duration / movie.timescale, width: video.video?.width ?? video.track_width, height: video.video?.height ?? video.track_height };
    };
    const buffer = MP4BoxBuffer.fromArrayBuffer(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer, 0);
    file.appendBuffer(buffer);
    file.flush();
  } catch {
    return null;
  }
  return info;
}
