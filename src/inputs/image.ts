/**
 * Start/end images for a clip, from an untrusted source: a local file (CLI), a URL, or the bytes of a
 * chat attachment. `loadImage` returns bytes that really are a PNG, JPEG or WebP within the size limit,
 * or throws a user error whose message tells the member what happened and what to do.
 */
import { constants as fsConstants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { fileTypeFromBuffer } from 'file-type';
import { AppError, ErrorCode, userError } from '../errors.ts';
import { fetchImageBytes, tooLargeError, type HostLookup } from './fetch-url.ts';

export { isForbiddenAddress, type HostLookup, type ResolvedHost } from './fetch-url.ts';

export type ImageSource =
  | { kind: 'file'; path: string }
  | { kind: 'url'; url: string }
  | { kind: 'bytes'; data: Buffer; filename?: string };

export interface LoadedImage {
  data: Buffer;
  mime: 'image/png' | 'image/jpeg' | 'image/webp';
  ext: 'png' | 'jpg' | 'webp';
  sizeBytes: number;
}

export interface LoadImageOptions {
  maxBytes: number;
  /** Skips only the private-address check on URLs (local development, tests). */
  allowPrivateNetworks?: boolean;
  /** One deadline for the whole URL fetch, redirects included. Default 15000. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Test seam: replaces DNS for URL host names. See `ResolvedHost.treatAsPublic`. */
  lookup?: HostLookup;
}

export const DEFAULT_TIMEOUT_MS = 15_000;
const WANTED = 'Attach a PNG, JPEG or WebP picture.';

type Origin = ImageSource['kind'];

export async function loadImage(source: ImageSource, opts: LoadImageOptions): Promise<LoadedImage> {
  if (!(opts.maxBytes > 0)) throw new RangeError('loadImage: maxBytes must be a positive number');
  switch (source.kind) {
    case 'file':
      return sniffImage(await readLocalFile(source.path, opts.maxBytes), 'file');
    case 'bytes':
      if (source.data.length > opts.maxBytes) throw tooLargeError(source.data.length, opts.maxBytes);
      return sniffImage(source.data, 'bytes');
    case 'url': {
      const data = await fetchImageBytes(source.url, {
        maxBytes: opts.maxBytes,
        timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        allowPrivateNetworks: opts.allowPrivateNetworks,
        signal: opts.signal,
        lookup: opts.lookup,
      });
      return sniffImage(data, 'url');
    }
    default: {
      const unknown: never = source;
      throw userError(ErrorCode.InvalidRequest, 'That image source is not one I know. Attach the file or paste a link.', {
        kind: (unknown as { kind?: unknown }).kind,
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Local files

function fileError(error: unknown, path: string): AppError {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const shown = JSON.stringify(path);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return userError(ErrorCode.InvalidRequest, `I can't find the file ${shown}. Check the path and try again.`, { path, code });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return userError(ErrorCode.InvalidRequest, `I'm not allowed to read the file ${shown}. Check its permissions and try again.`, { path, code });
  }
  return userError(ErrorCode.InvalidRequest, `I couldn't read the file ${shown}${code ? ` (${code})` : ''}. Check the path and try again.`, {
    path,
    code,
  });
}

function notAFile(path: string, isDirectory: boolean): AppError {
  const what = isDirectory ? 'a folder' : 'not a regular file';
  return userError(ErrorCode.InvalidRequest, `${JSON.stringify(path)} is ${what}. Give the path of a PNG, JPEG or WebP file.`, { path });
}

/** Size is judged from stat before anything is read; the read itself never takes more than maxBytes + 1. */
async function readLocalFile(path: string, maxBytes: number): Promise<Buffer> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    throw fileError(error, path);
  }
  if (!info.isFile()) throw notAFile(path, info.isDirectory());
  if (info.size > maxBytes) throw tooLargeError(info.size, maxBytes);

  // O_NONBLOCK: should the path be swapped for a FIFO after the stat, opening it must not hang.
  let handle;
  try {
    handle = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw fileError(error, path);
  }
  try {
    const again = await handle.stat();
    if (!again.isFile()) throw notAFile(path, again.isDirectory());
    if (again.size > maxBytes) throw tooLargeError(again.size, maxBytes);
    // One byte of headroom shows whether the file grew past the limit since the stat.
    const buffer = Buffer.alloc(Math.min(again.size, maxBytes) + 1);
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    if (filled > maxBytes) throw tooLargeError(undefined, maxBytes);
    return buffer.subarray(0, filled);
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw fileError(error, path);
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------------
// Sniffing

const ACCEPTED: Record<string, Pick<LoadedImage, 'mime' | 'ext'>> = {
  'image/png': { mime: 'image/png', ext: 'png' },
  'image/apng': { mime: 'image/png', ext: 'png' }, // an animated PNG is still a PNG; backends use frame one
  'image/jpeg': { mime: 'image/jpeg', ext: 'jpg' },
  'image/webp': { mime: 'image/webp', ext: 'webp' },
};

const NAMED: Record<string, string> = {
  pdf: 'a PDF document',
  gif: 'a GIF',
  heic: 'a HEIC photo',
  heif: 'a HEIF photo',
  avif: 'an AVIF image',
  bmp: 'a BMP image',
  tif: 'a TIFF image',
  ico: 'an icon file',
  icns: 'an icon file',
  jxl: 'a JPEG XL image',
  psd: 'a Photoshop file',
  cr2: 'a camera RAW photo',
  nef: 'a camera RAW photo',
  dng: 'a camera RAW photo',
  arw: 'a camera RAW photo',
  zip: 'a ZIP archive',
  gz: 'a compressed archive',
  rar: 'a RAR archive',
  '7z': 'a 7-Zip archive',
  docx: 'a Word document',
  xlsx: 'an Excel spreadsheet',
  pptx: 'a PowerPoint file',
  exe: 'a program',
  elf: 'a program',
};

interface Kind {
  what: string;
  /** An image, just not a format we take: the hint is to convert rather than to find a picture. */
  image?: boolean;
  video?: boolean;
  html?: boolean;
}

function describeDetected(ext: string, mime: string, data: Buffer): Kind {
  if (ext === 'xml' && looksLikeSvg(data)) return { what: 'an SVG drawing', image: true };
  if (ext === 'xml' && looksLikeHtml(data)) return { what: 'a web page', html: true };
  const named = NAMED[ext];
  if (mime.startsWith('video/')) return { what: `a video (${ext.toUpperCase()})`, video: true };
  if (mime.startsWith('audio/')) return { what: `an audio file (${ext.toUpperCase()})` };
  if (mime.startsWith('image/')) return { what: named ?? `a ${ext.toUpperCase()} image`, image: true };
  return { what: named ?? `a ${ext.toUpperCase()} file` };
}

/** The lower-cased start of the text, without BOM, leading whitespace and HTML comments. */
function textStart(data: Buffer): string {
  let s = data.subarray(0, 2048).toString('utf8').replace(/^\uFEFF/, '').toLowerCase();
  for (;;) {
    s = s.trimStart();
    if (!s.startsWith('<!--')) return s;
    const end = s.indexOf('-->');
    if (end < 0) return '';
    s = s.slice(end + 3);
  }
}

function looksLikeSvg(data: Buffer): boolean {
  const start = textStart(data);
  return start.startsWith('<svg') || (start.startsWith('<?xml') && start.includes('<svg'));
}

function looksLikeHtml(data: Buffer): boolean {
  const start = textStart(data);
  return ['<!doctype html', '<html', '<head', '<body', '<meta', '<title', '<script'].some((p) => start.startsWith(p)) ||
    (start.startsWith('<?xml') && start.includes('<html'));
}

function looksLikeText(data: Buffer): boolean {
  const sample = data.subarray(0, 1024);
  let printable = 0;
  for (const byte of sample) {
    if (byte === 0) return false;
    if (byte === 9 || byte === 10 || byte === 13 || byte >= 32) printable++;
  }
  return sample.length > 0 && printable / sample.length > 0.95;
}

function describeUndetected(data: Buffer): Kind | undefined {
  if (looksLikeHtml(data)) return { what: 'a web page', html: true };
  if (looksLikeSvg(data)) return { what: 'an SVG drawing', image: true };
  if (looksLikeText(data)) {
    const start = textStart(data);
    return { what: start.startsWith('{') || start.startsWith('[') ? 'JSON data' : 'plain text' };
  }
  return undefined;
}

const SUBJECT: Record<Origin, string> = { file: 'That file', url: 'That link', bytes: 'That attachment' };

function unsupported(origin: Origin, kind: Kind | undefined, detected: string | undefined): AppError {
  const subject = SUBJECT[origin];
  let message: string;
  if (kind === undefined) {
    message = `${subject} isn't an image I recognise. ${WANTED}`;
  } else if (kind.html) {
    message =
      origin === 'url'
        ? 'The link returned a web page (often a login page), not an image. Use a direct link to the picture, or download it and attach the file.'
        : origin === 'bytes'
          ? 'The attachment came through as a web page (often a login page), not an image. Attach the picture again; if this keeps happening, the bot may lack permission to read files here.'
          : `That file is a web page (HTML), not an image. ${WANTED}`;
  } else if (kind.image) {
    message = `${subject} is ${kind.what}; I can only use PNG, JPEG or WebP. Convert it (or take a screenshot of it) and try again.`;
  } else if (kind.video) {
    message = `${subject} is ${kind.what}, not a still image. ${WANTED} A frame grab works.`;
  } else {
    const what = origin === 'url' ? `returned ${kind.what}` : `is ${kind.what}`;
    message = `${subject} ${what}, not an image. ${WANTED}`;
  }
  return userError(ErrorCode.UnsupportedImage, message, { detected });
}

/** Checks the bytes themselves (never the name or a Content-Type header) and accepts PNG, JPEG, WebP. */
export async function sniffImage(data: Buffer, origin: Origin = 'bytes'): Promise<LoadedImage> {
  if (data.length === 0) {
    const message =
      origin === 'url' ? `The link returned nothing at all. Check the link, or attach the file instead.` : `${SUBJECT[origin]} is empty. ${WANTED}`;
    throw userError(ErrorCode.UnsupportedImage, message, { detected: 'empty' });
  }
  const type = await fileTypeFromBuffer(data);
  const accepted = type ? ACCEPTED[type.mime] : undefined;
  if (accepted) return { data, ...accepted, sizeBytes: data.length };
  const kind = type ? describeDetected(type.ext, type.mime, data) : describeUndetected(data);
  throw unsupported(origin, kind, type?.mime ?? (kind?.html ? 'text/html' : undefined));
}
