import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../src/errors.ts';
import { isForbiddenAddress, loadImage, type HostLookup, type LoadImageOptions } from '../../src/inputs/image.ts';

// Real, tiny images: a 1x1 PNG, and a 2x2 JPEG and WebP made with ffmpeg.
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU4LjQyLjEwMAD/2wBDAAgEBAQEBAUFBQUFBQYGBgYGBgYGBgYGBgYHBwcICAgHBwcGBgcHCAgICAkJCQgICAgJCQoKCgwMCwsODg4RERT/xABMAAEBAAAAAAAAAAAAAAAAAAAABgEBAQAAAAAAAAAAAAAAAAAABgcQAQAAAAAAAAAAAAAAAAAAAAARAQAAAAAAAAAAAAAAAAAAAAD/wAARCAACAAIDASIAAhEAAxEA/9oADAMBAAIRAxEAPwCLAFF/f//Z',
  'base64',
);
const WEBP = Buffer.from('UklGRjwAAABXRUJQVlA4IDAAAADQAQCdASoCAAIAAgA0JaACdLoB+AADsAD+8Oj3/yC5YXXI1/8gP+QH/ID/+PIAAAA=', 'base64');
const GIF = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
const PDF = Buffer.from('%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n', 'latin1');
const LOGIN_PAGE = '<!DOCTYPE html>\n<html><head><title>Sign in to Slack</title></head><body><form>...</form></body></html>';

const MiB = 1024 * 1024;
const LIMIT = 10 * MiB;
const base: LoadImageOptions = { maxBytes: LIMIT };

// ---------------------------------------------------------------------------------------------------
// Helpers

interface TestServer {
  port: number;
  /** Every request the server received, as "HOST PATH". */
  requests: string[];
  close: () => Promise<void>;
}

const servers: TestServer[] = [];

async function startServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.headers.host} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const handle: TestServer = {
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

function servePng(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length });
  res.end(PNG);
}

/** A fake DNS in which `public.test` is the only name treated as public (it really is 127.0.0.1). */
const fakeDns: HostLookup = async (hostname) => {
  if (hostname === 'public.test') return [{ address: '127.0.0.1', family: 4, treatAsPublic: true }];
  if (hostname === 'private.test') return [{ address: '127.0.0.1', family: 4 }];
  if (hostname === 'mixed.test') return [{ address: '8.8.8.8', family: 4 }, { address: '10.0.0.1', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
};

/** Awaits a failure and checks it is a user error with `code` and a message a person can act on. */
async function expectUserError(work: Promise<unknown>, code: ErrorCode, ...hints: RegExp[]): Promise<AppError> {
  const error = await work.then(
    () => {
      throw new Error(`expected ${code}, but it succeeded`);
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  const appError = error as AppError;
  expect({ code: appError.code, kind: appError.kind, message: appError.message }).toMatchObject({ code, kind: 'user' });
  for (const hint of hints) expect(appError.message).toMatch(hint);
  // Human: a sentence with advice, no raw errno codes or stray JavaScript values.
  expect(appError.message).toMatch(/\.$/);
  expect(appError.message).not.toMatch(/\bE[A-Z]{4,}\b|undefined|null|\[object|NaN/);
  return appError;
}

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dreambot-image-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

// ---------------------------------------------------------------------------------------------------

describe('isForbiddenAddress', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.255.254', true],
    ['0.0.0.0', true],
    ['0.1.2.3', true],
    ['10.0.0.1', true],
    ['172.16.0.1', true],
    ['172.31.255.255', true],
    ['172.32.0.1', false],
    ['192.168.1.1', true],
    ['169.254.169.254', true],
    ['100.64.0.1', true],
    ['100.127.255.255', true],
    ['100.128.0.1', false],
    ['224.0.0.1', true],
    ['239.255.255.250', true],
    ['240.0.0.1', true],
    ['255.255.255.255', true],
    ['192.0.2.1', true],
    ['8.8.8.8', false],
    ['1.1.1.1', false],
    ['93.184.216.34', false],
    ['::1', true],
    ['::', true],
    ['fc00::1', true],
    ['fd12:3456:789a::1', true],
    ['fe80::1', true],
    ['fe80::1%eth0', true],
    ['ff02::1', true],
    ['::ffff:127.0.0.1', true],
    ['::ffff:7f00:1', true],
    ['::ffff:10.0.0.1', true],
    ['::ffff:169.254.169.254', true],
    ['::ffff:8.8.8.8', false],
    ['::127.0.0.1', true],
    ['64:ff9b::7f00:1', true],
    ['64:ff9b::808:808', false],
    ['2002:7f00:1::1', true],
    ['2001:db8::1', true],
    ['2606:4700::1', false],
    ['2001:4860:4860::8888', false],
    ['[::1]', true],
    ['0177.0.0.1', true],
    ['not-an-ip', true],
    ['', true],
  ])('GIVEN %s THEN %s', (ip, forbidden) => {
    expect(isForbiddenAddress(ip)).toBe(forbidden);
  });
});

describe('loadImage from bytes', () => {
  it.each([
    ['PNG', PNG, 'image/png', 'png'],
    ['JPEG', JPEG, 'image/jpeg', 'jpg'],
    ['WebP', WEBP, 'image/webp', 'webp'],
  ])('accepts a real %s', async (_name, data, mime, ext) => {
    const image = await loadImage({ kind: 'bytes', data, filename: 'picture.bin' }, base);
    expect(image).toEqual({ data, mime, ext, sizeBytes: data.length });
  });

  it('refuses a GIF, naming it and saying which formats work', async () => {
    await expectUserError(loadImage({ kind: 'bytes', data: GIF }, base), ErrorCode.UnsupportedImage, /GIF/, /PNG, JPEG or WebP/, /convert/i);
  });

  it('refuses a PDF even when it is named like a picture', async () => {
    await expectUserError(loadImage({ kind: 'bytes', data: PDF, filename: 'photo.png' }, base), ErrorCode.UnsupportedImage, /PDF/, /attach/i);
  });

  it('explains a login page that came back instead of the attachment', async () => {
    await expectUserError(
      loadImage({ kind: 'bytes', data: Buffer.from(LOGIN_PAGE) }, base),
      ErrorCode.UnsupportedImage,
      /web page/,
      /login page/,
      /permission/,
    );
  });

  it('refuses empty and oversized bytes', async () => {
    await expectUserError(loadImage({ kind: 'bytes', data: Buffer.alloc(0) }, base), ErrorCode.UnsupportedImage, /empty/, /attach/i);
    const big = Buffer.concat([PNG, Buffer.alloc(2000)]);
    await expectUserError(loadImage({ kind: 'bytes', data: big }, { maxBytes: 1024 }), ErrorCode.ImageTooLarge, /1 KB/, /resize/i);
  });
});

describe('loadImage from a file', () => {
  it('loads a PNG file', async () => {
    const path = join(dir, 'ok.png');
    await writeFile(path, PNG);
    const image = await loadImage({ kind: 'file', path }, base);
    expect(image.mime).toBe('image/png');
    expect(image.data.equals(PNG)).toBe(true);
  });

  it('refuses a PDF, saying what it is', async () => {
    const path = join(dir, 'doc.pdf');
    await writeFile(path, PDF);
    await expectUserError(loadImage({ kind: 'file', path }, base), ErrorCode.UnsupportedImage, /That file is a PDF document/, /attach a PNG/i);
  });

  it('refuses a 50 MB file from its size alone, at once', async () => {
    const path = join(dir, 'huge.png');
    await writeFile(path, PNG);
    await truncate(path, 50 * MiB); // sparse: the PNG header, then 50 MB of holes
    const started = performance.now();
    await expectUserError(loadImage({ kind: 'file', path }, base), ErrorCode.ImageTooLarge, /50\.0 MB; the limit is 10 MB/, /resize/i);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('never reads a file it refuses for size (a 64 GiB sparse file could not be read at all)', async () => {
    const path = join(dir, 'enormous.png');
    await writeFile(path, PNG);
    await truncate(path, 64 * 1024 * MiB);
    const started = performance.now();
    await expectUserError(loadImage({ kind: 'file', path }, base), ErrorCode.ImageTooLarge, /65536\.0 MB/, /resize/i);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('explains a missing file', async () => {
    await expectUserError(loadImage({ kind: 'file', path: join(dir, 'nope.png') }, base), ErrorCode.InvalidRequest, /can't find the file/, /check the path/i);
  });

  it('explains a folder given as a file', async () => {
    await expectUserError(loadImage({ kind: 'file', path: dir }, base), ErrorCode.InvalidRequest, /is a folder/, /PNG, JPEG or WebP/);
  });
});

describe('loadImage from a URL: the address guard', () => {
  it('refuses every local or private form of the address and never connects', async () => {
    const server = await startServer(servePng);
    const p = server.port;
    for (const url of [
      `http://127.0.0.1:${p}/x.png`,
      `http://localhost:${p}/x.png`,
      `http://[::1]:${p}/x.png`,
      `http://[::ffff:7f00:1]:${p}/x.png`,
      `http://2130706433:${p}/x.png`,
      `http://0x7f.1:${p}/x.png`,
      `http://0177.0.0.1:${p}/x.png`,
      `http://private.test:${p}/x.png`,
    ]) {
      await expectUserError(loadImage({ kind: 'url', url }, { ...base, lookup: url.includes('.test') ? fakeDns : undefined }), ErrorCode.ForbiddenUrl, /private network/, /attach the file/);
    }
    expect(server.requests).toEqual([]);
  });

  it.each([
    'http://10.0.0.5/x.png',
    'http://[::1]/',
    'http://2130706433/',
    'http://169.254.169.254/latest/meta-data/',
    'https://192.168.0.1/x.png',
    'http://[fd00::1]/x.png',
  ])('refuses %s', async (url) => {
    await expectUserError(loadImage({ kind: 'url', url }, base), ErrorCode.ForbiddenUrl, /private network/, /public https link/);
  });

  it('refuses a host name when any one of its addresses is private', async () => {
    await expectUserError(loadImage({ kind: 'url', url: 'http://mixed.test/x.png' }, { ...base, lookup: fakeDns }), ErrorCode.ForbiddenUrl, /private network/);
  });

  it.each(['ftp://example.com/x.png', 'file:///etc/passwd', 'gopher://example.com/', 'data:image/png;base64,AAAA'])(
    'refuses the scheme of %s',
    async (url) => {
      await expectUserError(loadImage({ kind: 'url', url }, base), ErrorCode.ForbiddenUrl, /only fetch http and https/, /attach the file/);
    },
  );

  it('refuses credentials in the URL', async () => {
    await expectUserError(loadImage({ kind: 'url', url: 'https://user:secret@example.com/x.png' }, base), ErrorCode.ForbiddenUrl, /username or password/);
  });

  it('explains text that is not a link', async () => {
    await expectUserError(loadImage({ kind: 'url', url: 'my cat picture' }, base), ErrorCode.InvalidRequest, /web link/, /attach the file/);
  });

  it('loads the same local URL when private networks are allowed', async () => {
    const server = await startServer(servePng);
    const image = await loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/x.png` }, { ...base, allowPrivateNetworks: true });
    expect(image).toMatchObject({ mime: 'image/png', ext: 'png', sizeBytes: PNG.length });
    expect(image.data.equals(PNG)).toBe(true);
  });

  it('connects to the checked address only, keeping the Host header (pinned, no second lookup)', async () => {
    const server = await startServer(servePng);
    const image = await loadImage({ kind: 'url', url: `http://public.test:${server.port}/x.png` }, { ...base, lookup: fakeDns });
    expect(image.mime).toBe('image/png');
    expect(server.requests).toEqual([`public.test:${server.port} /x.png`]);
  });
});

describe('loadImage from a URL: redirects', () => {
  it('follows up to 3 redirects on an allowed host', async () => {
    const server = await startServer((req, res) => {
      const next: Record<string, string> = { '/a': '/b', '/b': '/c', '/c': '/x.png' };
      const location = next[req.url ?? ''];
      if (location) res.writeHead(302, { location }).end();
      else servePng(req, res);
    });
    const image = await loadImage({ kind: 'url', url: `http://public.test:${server.port}/a` }, { ...base, lookup: fakeDns });
    expect(image.ext).toBe('png');
    expect(server.requests).toHaveLength(4);
  });

  it('stops after 3 redirects', async () => {
    const server = await startServer((req, res) => {
      const n = Number((req.url ?? '/0').slice(1));
      res.writeHead(301, { location: `/${n + 1}` }).end();
    });
    await expectUserError(
      loadImage({ kind: 'url', url: `http://public.test:${server.port}/0` }, { ...base, lookup: fakeDns }),
      ErrorCode.ImageFetchFailed,
      /redirected more than 3 times/,
      /direct link/,
    );
    expect(server.requests).toHaveLength(4);
  });

  it.each([
    ['a literal loopback address', (port: number) => `http://127.0.0.1:${port}/x.png`],
    ['a name that resolves to loopback', (port: number) => `http://private.test:${port}/x.png`],
    ['localhost', (port: number) => `http://localhost:${port}/x.png`],
  ])('refuses a redirect from an allowed host to %s, without contacting it', async (_label, target) => {
    const internal = await startServer(servePng);
    const front = await startServer((_req, res) => res.writeHead(302, { location: target(internal.port) }).end());
    const lookup: HostLookup = async (host) => (host === 'localhost' ? [{ address: '127.0.0.1', family: 4 }] : fakeDns(host));
    await expectUserError(
      loadImage({ kind: 'url', url: `http://public.test:${front.port}/start` }, { ...base, lookup }),
      ErrorCode.ForbiddenUrl,
      /redirects into a private network/,
      /attach the file/,
    );
    expect(front.requests).toHaveLength(1);
    expect(internal.requests).toEqual([]);
  });

  it('refuses a redirect to a file: URL', async () => {
    const front = await startServer((_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await expectUserError(
      loadImage({ kind: 'url', url: `http://public.test:${front.port}/start` }, { ...base, lookup: fakeDns }),
      ErrorCode.ForbiddenUrl,
      /redirects to file:/,
    );
  });
});

describe('loadImage from a URL: what comes back', () => {
  const local = { ...base, allowPrivateNetworks: true };

  it('explains an HTML login page instead of an image', async () => {
    const server = await startServer((_req, res) => res.writeHead(200, { 'content-type': 'image/png' }).end(LOGIN_PAGE));
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/img.png` }, local),
      ErrorCode.UnsupportedImage,
      /The link returned a web page \(often a login page\), not an image/,
      /attach the file/,
    );
  });

  it('names a PDF served from a link', async () => {
    const server = await startServer((_req, res) => res.writeHead(200).end(PDF));
    await expectUserError(loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/doc` }, local), ErrorCode.UnsupportedImage, /PDF document/, /attach a PNG/i);
  });

  it('refuses 12 MB streamed without Content-Length once it passes 10 MB', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' }); // no Content-Length: chunked
      res.write(PNG);
      const chunk = Buffer.alloc(64 * 1024);
      let sent = PNG.length;
      const pump = (): void => {
        while (sent < 12 * MiB) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/big.png` }, local),
      ErrorCode.ImageTooLarge,
      /over the 10 MB limit/,
      /resize/i,
    );
    expect(server.requests).toHaveLength(1);
  });

  it('refuses a declared Content-Length over the limit before the body arrives', async () => {
    const server = await startServer((_req, res) => {
      res.writeHead(200, { 'content-length': 12 * MiB });
      res.write(PNG); // and then nothing: only the header can explain a quick refusal
    });
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/big.png` }, { ...local, timeoutMs: 5000 }),
      ErrorCode.ImageTooLarge,
      /12\.0 MB; the limit is 10 MB/,
      /resize/i,
    );
  });

  it('reports a 404 plainly', async () => {
    const server = await startServer((_req, res) => res.writeHead(404).end('not here'));
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/gone.png` }, local),
      ErrorCode.ImageFetchFailed,
      /The link answered 404 \(Not Found\)/,
      /check the link/i,
    );
  });

  it('gives up on a server that never answers', async () => {
    const server = await startServer(() => {
      /* hang */
    });
    const started = performance.now();
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/slow.png` }, { ...local, timeoutMs: 300 }),
      ErrorCode.ImageFetchFailed,
      /within 0\.3 s/,
      /try again later/i,
    );
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('explains a refused connection and an unknown host', async () => {
    const server = await startServer(servePng);
    const port = server.port;
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    await expectUserError(loadImage({ kind: 'url', url: `http://127.0.0.1:${port}/x.png` }, local), ErrorCode.ImageFetchFailed, /refused the connection/, /attach the file/);
    await expectUserError(loadImage({ kind: 'url', url: 'http://nowhere.test/x.png' }, { ...base, lookup: fakeDns }), ErrorCode.ImageFetchFailed, /couldn't find the site nowhere\.test/, /typos/);
  });

  it('stops when the caller cancels', async () => {
    const server = await startServer(() => {
      /* hang */
    });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expectUserError(
      loadImage({ kind: 'url', url: `http://127.0.0.1:${server.port}/x.png` }, { ...local, signal: controller.signal }),
      ErrorCode.Cancelled,
      /cancelled/,
    );
  });
});
