/**
 * Fetching an image from a URL a member pasted. The URL is untrusted, so this is an SSRF boundary:
 * - only http: and https:, no credentials in the URL;
 * - the host is resolved once, every address is checked (`isForbiddenAddress`), and the connection is
 *   pinned to those checked addresses through a custom `lookup`, so DNS rebinding between the check and
 *   the connect cannot reach an internal address;
 * - redirects are followed by hand (at most 3), each hop checked again the same way;
 * - the size limit holds on Content-Length and while streaming; one deadline covers every hop.
 */
import { request as httpRequest, STATUS_CODES, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest, type RequestOptions as HttpsRequestOptions } from 'node:https';
import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP, type LookupFunction } from 'node:net';
import { AppError, ErrorCode, userError } from '../errors.ts';

export const MAX_REDIRECTS = 3;
const MAX_URL_LENGTH = 8192;
const USER_AGENT = 'dreambot/0.1 (image fetch)';
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/** One address a host name resolved to. */
export interface ResolvedHost {
  address: string;
  family: 4 | 6;
  /** Test seam only: let this address past the private-network check. Real DNS never sets it. */
  treatAsPublic?: boolean;
}

/** Replaces DNS resolution (tests). Never consulted for IP literals, so those are always checked. */
export type HostLookup = (hostname: string) => Promise<ResolvedHost[]>;

export interface FetchImageOptions {
  maxBytes: number;
  timeoutMs: number;
  allowPrivateNetworks?: boolean;
  signal?: AbortSignal;
  lookup?: HostLookup;
}

// ---------------------------------------------------------------------------------------------------
// Address policy

type V4Range = readonly [base: number, prefix: number];
const v4 = (a: number, b: number, c: number, d: number): number => ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;

/** IPv4 ranges that must never be fetched: loopback, private, link-local, CGNAT, reserved, test nets. */
const FORBIDDEN_V4: readonly V4Range[] = [
  [v4(0, 0, 0, 0), 8], // "this network", unspecified
  [v4(10, 0, 0, 0), 8], // private
  [v4(100, 64, 0, 0), 10], // carrier-grade NAT
  [v4(127, 0, 0, 0), 8], // loopback
  [v4(169, 254, 0, 0), 16], // link-local, including cloud metadata 169.254.169.254
  [v4(172, 16, 0, 0), 12], // private
  [v4(192, 0, 0, 0), 24], // IETF protocol assignments
  [v4(192, 0, 2, 0), 24], // TEST-NET-1
  [v4(192, 88, 99, 0), 24], // 6to4 relay anycast
  [v4(192, 168, 0, 0), 16], // private
  [v4(198, 18, 0, 0), 15], // benchmarking
  [v4(198, 51, 100, 0), 24], // TEST-NET-2
  [v4(203, 0, 113, 0), 24], // TEST-NET-3
  [v4(224, 0, 0, 0), 4], // multicast
  [v4(240, 0, 0, 0), 4], // reserved, broadcast
];

function parseV4(text: string): number {
  const [a = 0, b = 0, c = 0, d = 0] = text.split('.').map(Number);
  return v4(a, b, c, d);
}

function isForbiddenV4(n: number): boolean {
  return FORBIDDEN_V4.some(([base, prefix]) => n >>> (32 - prefix) === base >>> (32 - prefix));
}

/** Eight 16-bit groups; `text` must already be a valid IPv6 address (net.isIP === 6). */
function parseV6(text: string): number[] {
  let s = text.toLowerCase();
  if (s.includes('.')) {
    const cut = s.lastIndexOf(':') + 1;
    const n = parseV4(s.slice(cut));
    s = `${s.slice(0, cut)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  if (tail === undefined) return left;
  const right = groups(tail);
  return [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
}

function isForbiddenV6(g: number[]): boolean {
  const at = (i: number): number => g[i] ?? 0;
  const embeddedV4 = (hi: number, lo: number): number => ((at(hi) << 16) | at(lo)) >>> 0;
  // IPv4-mapped ::ffff:a.b.c.d: judge the IPv4 address inside.
  if (at(0) === 0 && at(1) === 0 && at(2) === 0 && at(3) === 0 && at(4) === 0 && at(5) === 0xffff) {
    return isForbiddenV4(embeddedV4(6, 7));
  }
  // NAT64 64:ff9b::/96 and 6to4 2002::/16 also carry an IPv4 address that a gateway would reach.
  if (at(0) === 0x64 && at(1) === 0xff9b && at(2) === 0 && at(3) === 0 && at(4) === 0 && at(5) === 0) {
    return isForbiddenV4(embeddedV4(6, 7));
  }
  if (at(0) === 0x2002) return isForbiddenV4(embeddedV4(1, 2));
  // Only global unicast 2000::/3 is public. This refuses ::, ::1, ::/96, fc00::/7, fe80::/10, ff00::/8, ...
  if ((at(0) & 0xe000) !== 0x2000) return true;
  if (at(0) === 0x2001 && at(1) === 0x0db8) return true; // documentation
  if (at(0) === 0x2001 && at(1) === 0) return true; // Teredo
  if (at(0) === 0x3fff && (at(1) & 0xf000) === 0) return true; // 3fff::/20 documentation
  return false;
}

/**
 * True when `ip` must not be fetched from: loopback, unspecified, private, link-local (cloud metadata),
 * CGNAT, multicast, reserved and documentation ranges, and IPv6 forms that embed such an IPv4 address.
 * Anything that is not a plain IP address (after removing [brackets] and a %zone) counts as forbidden.
 */
export function isForbiddenAddress(ip: string): boolean {
  let s = ip.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const version = isIP(s);
  if (version === 4) return isForbiddenV4(parseV4(s));
  if (version === 6) return isForbiddenV6(parseV6(s));
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Messages

const MiB = 1024 * 1024;

function formatSize(bytes: number, fixed: boolean): string {
  const [value, unit] = bytes >= MiB ? [bytes / MiB, 'MB'] : bytes >= 1024 ? [bytes / 1024, 'KB'] : [bytes, 'bytes'];
  if (unit === 'bytes') return `${bytes} bytes`;
  return `${fixed ? value.toFixed(1) : Number(value.toFixed(1))} ${unit}`;
}

/** ImageTooLarge, with the size when it is known (stat, Content-Length) and without when streaming. */
export function tooLargeError(sizeBytes: number | undefined, maxBytes: number): AppError {
  const limit = formatSize(maxBytes, false);
  const message =
    sizeBytes === undefined
      ? `That image is over the ${limit} limit. Resize it and try again.`
      : `That image is ${formatSize(sizeBytes, true)}; the limit is ${limit}. Resize it and try again.`;
  return userError(ErrorCode.ImageTooLarge, message, { sizeBytes, maxBytes });
}

const ATTACH_INSTEAD = 'Use a public https link or attach the file.';

function forbiddenPrivate(host: string, hop: number): AppError {
  const message =
    hop === 0
      ? `That link points inside a private network, so I can't fetch it. ${ATTACH_INSTEAD}`
      : `That link redirects into a private network, so I can't follow it. ${ATTACH_INSTEAD}`;
  return userError(ErrorCode.ForbiddenUrl, message, { host, hop });
}

function statusError(status: number, host: string): AppError {
  const reason = STATUS_CODES[status];
  const answered = `The link answered ${status}${reason ? ` (${reason})` : ''}`;
  let hint: string;
  if (status === 401 || status === 403) hint = 'the image may be private. Use a public link or attach the file instead.';
  else if (status === 404 || status === 410) hint = 'the image is not there. Check the link, or attach the file instead.';
  else if (status >= 500) hint = 'the site is having trouble. Try again later, or attach the file instead.';
  else hint = "so I couldn't get the image. Check the link, or attach the file instead.";
  const joiner = hint.startsWith('so ') ? ', ' : '; ';
  return userError(ErrorCode.ImageFetchFailed, `${answered}${joiner}${hint}`, { status, host });
}

function describeNetworkCode(code: string): string {
  if (code === 'ECONNREFUSED') return 'refused the connection';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'dropped the connection';
  if (code === 'ETIMEDOUT' || code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return "couldn't be reached";
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return "couldn't be found";
  if (code.includes('CERT') || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL')) return 'has an invalid security certificate';
  if (code.startsWith('HPE_')) return 'sent a broken answer';
  return "couldn't be downloaded from";
}

// ---------------------------------------------------------------------------------------------------
// Fetching

function stripBrackets(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
}

function parseHttpUrl(raw: string, hop: number): URL {
  let url: URL;
  try {
    if (raw.length > MAX_URL_LENGTH) throw new Error('too long');
    url = new URL(raw.trim());
  } catch {
    if (hop > 0) {
      throw userError(ErrorCode.ImageFetchFailed, "The link redirected to an address I can't read. Attach the file instead.", { hop });
    }
    throw userError(ErrorCode.InvalidRequest, "That doesn't look like a web link. Paste a full https:// link, or attach the file.");
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    const where = hop === 0 ? 'that one starts with' : 'that one redirects to';
    throw userError(
      ErrorCode.ForbiddenUrl,
      `I can only fetch http and https links, and ${where} ${url.protocol}. ${ATTACH_INSTEAD}`,
      { protocol: url.protocol, hop },
    );
  }
  if (url.username !== '' || url.password !== '') {
    throw userError(
      ErrorCode.ForbiddenUrl,
      `That link has a username or password in it, so I won't fetch it. ${ATTACH_INSTEAD}`,
      { host: url.hostname, hop },
    );
  }
  return url;
}

/** Rejects when `signal` aborts, so a lookup that ignores signals still respects the deadline. */
function raceAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

async function defaultLookup(hostname: string): Promise<ResolvedHost[]> {
  const found = await dnsLookup(hostname, { all: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
}

/** The addresses this hop may connect to, every one of them checked. */
async function resolveChecked(url: URL, hop: number, opts: FetchImageOptions, signal: AbortSignal): Promise<ResolvedHost[]> {
  const host = stripBrackets(url.hostname);
  const literal = isIP(host);
  if (literal !== 0) {
    if (!opts.allowPrivateNetworks && isForbiddenAddress(host)) throw forbiddenPrivate(host, hop);
    return [{ address: host, family: literal === 6 ? 6 : 4 }];
  }
  let addresses: ResolvedHost[];
  try {
    addresses = await raceAbort((opts.lookup ?? defaultLookup)(host), signal);
  } catch (error) {
    if (signal.aborted || error instanceof AppError) throw error;
    addresses = [];
  }
  if (addresses.length === 0) {
    throw userError(
      ErrorCode.ImageFetchFailed,
      `I couldn't find the site ${host}. Check the link for typos, or attach the file instead.`,
      { host, hop },
    );
  }
  if (!opts.allowPrivateNetworks && addresses.some((a) => !a.treatAsPublic && isForbiddenAddress(a.address))) {
    throw forbiddenPrivate(host, hop);
  }
  return addresses;
}

type HopOutcome = { kind: 'body'; data: Buffer } | { kind: 'redirect'; location: string };

/** A lookup that can only answer with the addresses already checked: the connection is pinned to them. */
function pinnedLookup(addresses: ResolvedHost[]): LookupFunction {
  return (_hostname, options, callback) => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family;
    const usable = family === 4 || family === 6 ? addresses.filter((a) => a.family === family) : addresses;
    const first = usable[0];
    if (first === undefined) {
      const error: NodeJS.ErrnoException = new Error('no checked address for this address family');
      error.code = 'ENOTFOUND';
      callback(error, '');
    } else if (options.all) {
      callback(null, usable.map(({ address, family: f }) => ({ address, family: f })));
    } else {
      callback(null, first.address, first.family);
    }
  };
}

function requestHop(url: URL, addresses: ResolvedHost[], maxBytes: number, signal: AbortSignal): Promise<HopOutcome> {
  return new Promise<HopOutcome>((resolve, reject) => {
    const host = stripBrackets(url.hostname);
    let settled = false;
    let req: ClientRequest | undefined;
    const finish = (outcome: HopOutcome | Error, res?: IncomingMessage): void => {
      if (settled) return;
      settled = true;
      if (outcome instanceof Error || outcome.kind === 'redirect') {
        res?.destroy();
        req?.destroy();
      }
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const common: RequestOptions = {
      hostname: host,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      method: 'GET',
      headers: {
        host: url.host,
        'user-agent': USER_AGENT,
        accept: 'image/png,image/jpeg,image/webp;q=0.9,*/*;q=0.1',
        'accept-encoding': 'identity',
      },
      agent: false, // no pooled sockets: each one was opened for a checked address under this call's policy
      lookup: pinnedLookup(addresses),
      signal,
    };
    if (url.protocol === 'https:') {
      const tlsOptions: HttpsRequestOptions = isIP(host) === 0 ? { ...common, servername: host } : common;
      req = httpsRequest(tlsOptions);
    } else {
      req = httpRequest(common);
    }
    req.on('error', (error) => finish(error));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (REDIRECT_STATUSES.has(status)) {
        const location = res.headers.location;
        if (!location) {
          finish(userError(ErrorCode.ImageFetchFailed, `The link answered ${status} (a redirect) without saying where to. Attach the file instead.`, { status, host }), res);
        } else {
          finish({ kind: 'redirect', location }, res);
        }
        return;
      }
      if (status < 200 || status > 299) return finish(statusError(status, host), res);
      const declared = res.headers['content-length'];
      if (declared !== undefined && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
        return finish(tooLargeError(Number(declared), maxBytes), res);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      res.on('data', (chunk: Buffer) => {
        total += chunk.length;
        if (total > maxBytes) finish(tooLargeError(undefined, maxBytes), res);
        else chunks.push(chunk);
      });
      res.on('end', () => finish({ kind: 'body', data: Buffer.concat(chunks, total) }));
      res.on('error', (error) => finish(error, res));
      res.on('close', () => {
        const error: NodeJS.ErrnoException = new Error('connection closed before the body ended');
        error.code = 'ECONNRESET';
        finish(error, res);
      });
    });
    req.end();
  });
}

/** Turns a low-level failure into what the member should read; leaves our own bugs alone. */
function toFetchError(error: unknown, url: URL, timedOut: boolean, timeoutMs: number, signal: AbortSignal): unknown {
  if (error instanceof AppError) return error;
  const host = stripBrackets(url.hostname);
  if (timedOut) {
    const seconds = Number((timeoutMs / 1000).toFixed(1));
    return userError(
      ErrorCode.ImageFetchFailed,
      `The link didn't send the image within ${seconds} s, so I gave up. Try again later, or attach the file instead.`,
      { host, timeoutMs },
    );
  }
  if (signal.aborted) {
    if (signal.reason instanceof AppError) return signal.reason;
    return userError(ErrorCode.Cancelled, 'The image download was cancelled. Send the request again if you still want it.', { host });
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return error;
  return userError(
    ErrorCode.ImageFetchFailed,
    `I couldn't download the image: ${host} ${describeNetworkCode(code)}. Check the link, or attach the file instead.`,
    { host, code },
  );
}

/** Downloads `rawUrl` under the SSRF policy above and returns its raw bytes (not yet sniffed). */
export async function fetchImageBytes(rawUrl: string, opts: FetchImageOptions): Promise<Buffer> {
  let url = parseHttpUrl(rawUrl, 0);
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new Error('image fetch timed out'));
  }, opts.timeoutMs);
  const onCallerAbort = (): void => controller.abort(opts.signal?.reason);
  if (opts.signal?.aborted) onCallerAbort();
  else opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
  try {
    for (let hop = 0; ; hop++) {
      try {
        const addresses = await resolveChecked(url, hop, opts, controller.signal);
        const outcome = await requestHop(url, addresses, opts.maxBytes, controller.signal);
        if (outcome.kind === 'body') return outcome.data;
        if (hop >= MAX_REDIRECTS) {
          throw userError(
            ErrorCode.ImageFetchFailed,
            `The link redirected more than ${MAX_REDIRECTS} times, so I stopped following it. Use a direct link to the image, or attach the file.`,
            { host: url.hostname },
          );
        }
        let next: string;
        try {
          next = new URL(outcome.location, url).href;
        } catch {
          throw userError(
            ErrorCode.ImageFetchFailed,
            "The link redirected to an address I can't read. Use a direct link to the image, or attach the file.",
            { host: url.hostname },
          );
        }
        url = parseHttpUrl(next, hop + 1);
      } catch (error) {
        throw toFetchError(error, url, timedOut, opts.timeoutMs, controller.signal);
      }
    }
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onCallerAbort);
  }
}
