import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { AppError, ErrorCode, permanentError } from '../errors.ts';

/**
 * ffmpeg and ffprobe always run as child processes: encoding is seconds of CPU, and the event loop
 * serves webhooks that must be acknowledged within 3 s.
 */
export interface MediaBinaries {
  ffmpeg: string;
  ffprobe: string;
}

export type BinarySource = 'env' | 'system' | 'installer';

export interface ResolvedBinaries extends MediaBinaries {
  source: { ffmpeg: BinarySource; ffprobe: BinarySource };
  /** First line of `-version`, worth logging: the installer's ffmpeg is a 2018 build. */
  version: { ffmpeg: string; ffprobe: string };
}

export interface BinaryOptions {
  ffmpegPath?: string;
  ffprobePath?: string;
}

/** Enough of the end of stderr to hold ffmpeg's actual complaint, which comes last. */
const STDERR_TAIL = 4096;

function appendTail(tail: string, chunk: string): string {
  const joined = tail + chunk;
  return joined.length > STDERR_TAIL ? joined.slice(-STDERR_TAIL) : joined;
}

/** Runs `<bin> -version`; resolves with its first line, or undefined when the binary can't run. */
function probeVersion(bin: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(bin, ['-version'], { stdio: ['ignore', 'pipe', 'ignore'], timeout: 15_000 });
    } catch {
      resolve(undefined);
      return;
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      if (out.length < 1024) out += d;
    });
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve(code === 0 ? (out.split('\n')[0] ?? '').trim() : undefined));
  });
}

/**
 * The installer packages throw (a string, for ffmpeg) at import time when their platform binary is
 * missing, e.g. after `npm install --omit=optional`, so they are imported lazily and failures become
 * "not available" rather than a crash at module load.
 */
async function installerPath(which: 'ffmpeg' | 'ffprobe'): Promise<string | undefined> {
  try {
    const mod =
      which === 'ffmpeg' ? await import('@ffmpeg-installer/ffmpeg') : await import('@ffprobe-installer/ffprobe');
    return mod.default.path;
  } catch {
    return undefined;
  }
}

async function resolveOne(
  which: 'ffmpeg' | 'ffprobe',
  explicit: string | undefined,
): Promise<{ path: string; source: BinarySource; version: string }> {
  const envName = which === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  if (explicit !== undefined) {
    // An explicit path that does not work is a misconfiguration; silently falling back would hide it.
    const version = await probeVersion(explicit);
    if (version !== undefined) return { path: explicit, source: 'env', version };
    throw permanentError(ErrorCode.Config, `${envName}=${explicit} is not a working ${which} binary`, {
      context: { [envName]: explicit },
    });
  }
  // A bare name lets spawn search PATH itself; this module reads no environment variables (config.ts owns them).
  const systemVersion = await probeVersion(which);
  if (systemVersion !== undefined) return { path: which, source: 'system', version: systemVersion };
  const fromInstaller = await installerPath(which);
  if (fromInstaller !== undefined) {
    const version = await probeVersion(fromInstaller);
    if (version !== undefined) return { path: fromInstaller, source: 'installer', version };
  }
  throw permanentError(
    ErrorCode.Config,
    `no working ${which} found: set ${envName}, install ${which} on PATH, or install @${which}-installer/${which} ` +
      'with optional dependencies and install scripts enabled',
  );
}

const binaryCache = new Map<string, Promise<ResolvedBinaries>>();

/** Lookup order per binary: explicit path, then the system one on PATH, then the npm installer package. */
export function resolveBinaries(opts: BinaryOptions = {}): Promise<ResolvedBinaries> {
  const key = JSON.stringify([opts.ffmpegPath ?? null, opts.ffprobePath ?? null]);
  const cached = binaryCache.get(key);
  if (cached) return cached;
  const pending = (async () => {
    const [ffmpeg, ffprobe] = await Promise.all([
      resolveOne('ffmpeg', opts.ffmpegPath),
      resolveOne('ffprobe', opts.ffprobePath),
    ]);
    return {
      ffmpeg: ffmpeg.path,
      ffprobe: ffprobe.path,
      source: { ffmpeg: ffmpeg.source, ffprobe: ffprobe.source },
      version: { ffmpeg: ffmpeg.version, ffprobe: ffprobe.version },
    };
  })();
  binaryCache.set(key, pending);
  // A failure is not cached: the operator may fix the binary without restarting.
  pending.catch(() => binaryCache.delete(key));
  return pending;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Seconds of output written so far, from ffmpeg's `-progress` stream. */
  onProgress?: (outSeconds: number) => void;
}

function cancelled(what: string): AppError {
  return permanentError(ErrorCode.Cancelled, `${what} cancelled`);
}

/** Spawns a media tool and resolves with its stdout; rejects with the stderr tail on failure. */
function runTool(
  name: 'ffmpeg' | 'ffprobe',
  bin: string,
  args: string[],
  opts: RunOptions & { collectStdout: boolean },
): Promise<string> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(cancelled(name));
      return;
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderrTail = '';
    let progressLine = '';
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      // SIGKILL: a cancelled render's partial output is discarded anyway, and the caller waits
      // for 'close' so temp files can be removed right after.
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (opts.collectStdout) stdout += chunk;
      if (!opts.onProgress) return;
      const lines = (progressLine + chunk).split('\n');
      progressLine = lines.pop() ?? '';
      for (const line of lines) {
        // ffmpeg 4.1 has only out_time_ms, which despite its name is in microseconds; newer builds
        // add out_time_us with the same value. Both read as µs.
        const m = /^out_time_(?:ms|us)=(\d+)/.exec(line.trim());
        if (m?.[1]) opts.onProgress(Number(m[1]) / 1e6);
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderrTail = appendTail(stderrTail, chunk);
    });

    child.on('error', (error) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(permanentError(ErrorCode.Internal, `could not start ${name}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (aborted) reject(cancelled(name));
      else if (code === 0) resolve(stdout);
      else {
        const detail = stderrTail.trim() || `exit ${code ?? sig}`;
        reject(permanentError(ErrorCode.Internal, `${name} failed: ${detail}`, { context: { exitCode: code, signal: sig } }));
      }
    });
  });
}

export async function runFfmpeg(ffmpegPath: string, args: string[], opts: RunOptions = {}): Promise<void> {
  // -nostdin: ffmpeg otherwise treats stdin as an interactive console. Progress goes to stdout as
  // key=value lines, one block per ~0.5 s.
  const full = opts.onProgress ? ['-nostdin', '-progress', 'pipe:1', '-nostats', ...args] : ['-nostdin', ...args];
  await runTool('ffmpeg', ffmpegPath, full, { ...opts, collectStdout: false });
}

export async function runFfprobeJson(
  ffprobePath: string,
  args: string[],
  opts: { signal?: AbortSignal } = {},
): Promise<unknown> {
  const stdout = await runTool('ffprobe', ffprobePath, args, { signal: opts.signal, collectStdout: true });
  try {
    return JSON.parse(stdout) as unknown;
  } catch (error) {
    throw permanentError(ErrorCode.Internal, 'ffprobe printed something that is not JSON', { cause: error });
  }
}

const SYSTEM_FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf';

async function readable(file: string): Promise<boolean> {
  try {
    await access(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The title card needs a real font file: drawtext's fontconfig lookup is unreliable in a static
 * build inside a slim container. The npm package ships the same DejaVu the distros do.
 */
export async function resolveFontPath(fontPath?: string): Promise<string> {
  if (fontPath !== undefined) {
    if (await readable(fontPath)) return fontPath;
    throw permanentError(ErrorCode.Config, `FONT_PATH=${fontPath} is not a readable font file`);
  }
  try {
    const pkg = createRequire(import.meta.url).resolve('dejavu-fonts-ttf/package.json');
    const bundled = path.join(path.dirname(pkg), 'ttf', 'DejaVuSans-Bold.ttf');
    if (await readable(bundled)) return bundled;
  } catch {
    // Package not installed: try the system copy.
  }
  if (await readable(SYSTEM_FONT)) return SYSTEM_FONT;
  throw permanentError(
    ErrorCode.Config,
    'no font for preview title cards: set FONT_PATH, or install dejavu-fonts-ttf or fonts-dejavu-core',
  );
}
