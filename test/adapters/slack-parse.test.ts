import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as slack from '../../adapters/slack/index.ts';
import { decodeSlackText, mentionText, parseAdminText, parseDreamText, parseModalState, splitMessageKey, teamRef } from '../../adapters/slack/parse.ts';
import { clipCard, dreamModal, escape, jobMessage } from '../../adapters/slack/render.ts';
import { blockProblems, viewProblems } from '../fakes/slack/blocks.ts';

describe('slack parse: /dream text', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['a red fox in snow', { prompt: 'a red fox in snow' }],
    ['a fox --ar 9:16 --duration 9s --resolution 720p --camera push_in --loop --model ray-2', { prompt: 'a fox', aspect: '9:16', duration: '9s', resolution: '720p', camera: 'push_in', loop: true, model: 'ray-2' }],
    ['—ar 1:1 a fox –dur 9', { prompt: 'a fox', aspect: '1:1', duration: '9s' }],
    ['a fox --ar=16x9 --loop=no', { prompt: 'a fox', aspect: '16:9', loop: false }],
    ['animate --image <https://example.com/a.png> --end-image https://example.com/b.png?x=1&amp;y=2', { prompt: 'animate', image: { kind: 'url', url: 'https://example.com/a.png' }, end_image: { kind: 'url', url: 'https://example.com/b.png?x=1&y=2' } }],
    ['hi <@U123|ana> in <#C42|general> &lt;3 <https://x.io|site>', { prompt: 'hi @ana in #general <3 site' }],
    ['-- a dash alone stays', { prompt: '-- a dash alone stays' }],
  ];
  for (const [text, expected] of cases) it(`reads ${JSON.stringify(text)}`, () => expect(parseDreamText(text)).toEqual(expected));

  const errors: [string, RegExp][] = [
    ['a fox --ar 5:4', /`--ar 5:4`: I don't know that aspect ratio\. Choose one of: 16:9, 9:16/],
    ['a fox --fps 60', /I don't know the flag `--fps`\. Flags: --ar/],
    ['a fox --camera', /`--camera` needs a value, e.g\. `--camera push_in`/],
    ['a fox --duration 7', /clip length.*5s, 9s/],
  ];
  for (const [text, message] of errors) {
    it(`refuses ${JSON.stringify(text)}`, () => expect(() => parseDreamText(text)).toThrow(message));
  }

  it('strips only the bot mention from @mention text', () => {
    expect(mentionText('<@U0BOT> a fox <@U0ANA>', 'U0BOT')).toBe('a fox <@U0ANA>');
    expect(decodeSlackText(mentionText('<@U0BOT|dreambot>   a fox', 'U0BOT'))).toBe('a fox');
  });
});

describe('slack parse: modal state, refs, keys', () => {
  it('maps modal state by block id, files as refs', () => {
    const parsed = parseModalState({
      prompt: { prompt: { type: 'plain_text_input', value: ' a cat ' } },
      aspect: { aspect: { type: 'static_select', selected_option: { value: '9:16' } } },
      loop: { loop: { type: 'checkboxes', selected_options: [{ value: 'yes' }] } },
      image: { image: { type: 'file_input', files: [{ id: 'F1', name: 'a.png' }] } },
      end_image: { end_image: { type: 'file_input', files: [] } },
      model: { model: { type: 'plain_text_input', value: null } },
    });
    expect(parsed).toEqual({ values: { prompt: 'a cat', aspect: '9:16', loop: true }, startFile: { id: 'F1', name: 'a.png' } });
  });

  it('bills the org for an org-wide install, else the workspace', () => {
    expect(teamRef({ teamId: 'T1', enterpriseId: 'E1', isEnterpriseInstall: true })).toEqual({ platform: 'slack', externalId: 'E1' });
    expect(teamRef({ teamId: 'T1', enterpriseId: 'E1', isEnterpriseInstall: false })).toEqual({ platform: 'slack', externalId: 'T1' });
    expect(splitMessageKey('C0GENERAL:1700000000.000100')).toEqual({ channel: 'C0GENERAL', ts: '1700000000.000100' });
    expect(splitMessageKey('file:F1')).toBeNull();
  });
});

describe('slack parse: /dream-admin', () => {
  const cases: [string, unknown][] = [
    ['', { kind: 'help' }],
    ['limit 500', { kind: 'limit', limit: 500, period: 'monthly' }],
    ['LIMIT 20 Weekly', { kind: 'limit', limit: 20, period: 'weekly' }],
    ['grant 100', { kind: 'grant', amount: 100 }],
    ['user-cap <@U0BO|bo> 50', { kind: 'user-cap', userId: 'U0BO', name: 'bo', cap: 50 }],
    ['user-cap <@U0BO> none', { kind: 'user-cap', userId: 'U0BO', cap: null }],
    ['usage', { kind: 'usage' }],
    ['defaults ar=9:16 duration=9s model=', { kind: 'defaults', prefs: { aspect: '9:16', duration: '9s', model: '' } }],
    ['blocklist add &lt;gore&gt;', { kind: 'blocklist', op: 'add', word: '<gore>' }],
    ['blocklist', { kind: 'blocklist', op: 'list' }],
    ['link', { kind: 'link' }],
    ['link AB12CD34', { kind: 'link', code: 'AB12CD34' }],
  ];
  for (const [text, expected] of cases) it(`reads ${JSON.stringify(text)}`, () => expect(parseAdminText(text)).toEqual(expected));
  it('explains a mistake with the usage', () => {
    expect(() => parseAdminText('grant lots')).toThrow(/The amount must be a whole number[\s\S]*\/dream-admin grant 100/);
    expect(() => parseAdminText('user-cap bo 5')).toThrow(/@mention/);
  });
});

describe('slack render: within Slack\'s limits', () => {
  const g = {
    id: '00000000-0000-4000-8000-000000000001', backend: 'preview', operation: 'generate', estimatedCredits: 1,
    request: { operation: 'generate' as const, prompt: `<script> & ${'x'.repeat(6000)}`, aspect: '9:16' as const, resolution: '720p' as const, duration: '5s' as const, loop: true, model: 'preview', camera: 'push_in' as const },
  };
  it('job messages and clip cards pass the fake\'s Block Kit checks, with user text escaped', () => {
    const job = jobMessage({ generation: g, requester: 'U1', status: { kind: 'running', progress: 0.42 } });
    expect(blockProblems(job.blocks, 'message')).toEqual([]);
    expect(JSON.stringify(job.blocks)).toContain('&lt;script&gt; &amp;');
    expect(JSON.stringify(job.blocks)).toContain('▓▓▓▓░░░░░░ 42%');
    const card = clipCard(g, 'U1');
    expect(blockProblems(card.blocks, 'message')).toEqual([]);
    expect(escape('a<b>&c')).toBe('a&lt;b&gt;&amp;c');
  });
  it('the modal passes the view checks and is prefilled', () => {
    const view = dreamModal({ callbackId: 'dream_modal', title: 'Remix this clip', submit: 'Remix', metadata: { c: 'C1', p: g.id }, initial: { prompt: 'a cat', aspect: '9:16', loop: true }, withBackend: true });
    expect(viewProblems(view, 'modal')).toEqual([]);
    expect(JSON.stringify(view)).toContain('"initial_option":{"text":{"type":"plain_text","text":"9:16","emoji":true},"value":"9:16"}');
  });
});

describe('slack adapter: shape and boundary (style.md lesson 1)', () => {
  it('exports SlackAdapter and createSlackAdapter, and the registry factory', () => {
    expect(typeof slack.SlackAdapter).toBe('function');
    expect(typeof slack.createSlackAdapter).toBe('function');
    expect(typeof slack.slackAdapterFactory).toBe('function');
  });

  it('never imports a backend, the database layer or an SQL client', async () => {
    const root = path.resolve(import.meta.dirname, '../../adapters/slack');
    const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const source = await readFile(path.join(root, file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1]!);
      for (const spec of imports) expect(spec, `${file} imports ${spec}`).not.toMatch(/drizzle-orm|^postgres$|src\/backends\/|src\/db\/|src\/queue\/(?!delivery-worker)|lumaai/);
    }
  });
});
