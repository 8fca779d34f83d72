/**
 * multipart/form-data parsing for the fake's uploads. busboy is not installed here and nothing else in
 * node_modules parses multipart on the server side, so this is a small hand parser: it works on the whole
 * body in memory, which is what the fake has anyway (it enforces Discord's size limits afterwards).
 */
export interface MultipartFile {
  field: string;
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface Multipart {
  fields: Map<string, string>;
  files: MultipartFile[];
}

export function boundaryOf(contentType: string): string | null {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  return match ? (match[1] ?? match[2] ?? '').trim() : null;
}

function headerParam(header: string, name: string): string | undefined {
  // filename*=UTF-8''... takes precedence over filename="..." (RFC 6266 §4.3).
  const star = new RegExp(`${name}\\*=(?:UTF-8'')?([^;]+)`, 'i').exec(header);
  if (star) return decodeURIComponent(star[1]!.trim().replace(/^"|"$/g, ''));
  const plain = new RegExp(`${name}="((?:[^"\\\\]|\\\\.)*)"|${name}=([^;]+)`, 'i').exec(header);
  if (!plain) return undefined;
  return (plain[1] ?? plain[2] ?? '').replace(/\\(.)/g, '$1').trim();
}

export function parseMultipart(body: Buffer, contentType: string): Multipart {
  const boundary = boundaryOf(contentType);
  if (!boundary) throw new Error('multipart body without a boundary');
  const delimiter = Buffer.from(`--${boundary}`);
  const fields = new Map<string, string>();
  const files: MultipartFile[] = [];
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new Error('multipart body without its first boundary');
  for (;;) {
    pos += delimiter.length;
    // "--" after a delimiter closes the body.
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break;
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new Error('multipart part without a header end');
    const headers = new Map<string, string>();
    for (const line of body.subarray(pos, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const dataStart = headerEnd + 4;
    const next = body.indexOf(Buffer.concat([Buffer.from('\r\n'), delimiter]), dataStart);
    if (next < 0) throw new Error('multipart part without a closing boundary');
    const data = body.subarray(dataStart, next);
    const disposition = headers.get('content-disposition') ?? '';
    const field = headerParam(disposition, 'name') ?? '';
    const filename = headerParam(disposition, 'filename');
    if (filename !== undefined) {
      files.push({ field, filename, contentType: headers.get('content-type') ?? 'application/octet-stream', data: Buffer.from(data) });
    } else {
      fields.set(field, data.toString('utf8'));
    }
    pos = next + 2;
  }
  return { fields, files };
}
