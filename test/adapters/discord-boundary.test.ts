import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as discord from '../../adapters/discord/index.ts';

/** adapters/discord is transport only (architecture.md): it never calls a backend and never touches SQL. */
const dir = path.resolve(import.meta.dirname, '../../adapters/discord');

describe('adapters/discord boundary', () => {
  it('has the adapter shape: verify, parse, render, deliver; DiscordAdapter and createDiscordAdapter', async () => {
    const files = await readdir(dir);
    for (const f of ['verify.ts', 'parse.ts', 'render.ts', 'deliver.ts', 'index.ts']) expect(files).toContain(f);
    expect(typeof discord.DiscordAdapter).toBe('function');
    expect(typeof discord.createDiscordAdapter).toBe('function');
    expect(await readFile(path.join(dir, 'index.ts'), 'utf8')).toMatch(/export interface DiscordAdapterConfig/);
  });

  it('imports no backend, database or queue code, and writes no SQL', async () => {
    for (const file of (await readdir(dir)).filter((f) => f.endsWith('.ts'))) {
      const text = await readFile(path.join(dir, file), 'utf8');
      const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) {
        expect(spec, `${file} imports ${spec}`).not.toMatch(/src\/backends\/|src\/db\/|src\/ledger\/(?!periods)|src\/queue\/(?!delivery-worker)|^drizzle-orm|^postgres$|^ioredis$|^bullmq$/);
      }
      expect(text, `${file} has SQL`).not.toMatch(/\bsql`|\.execute\(/);
    }
  });
});
