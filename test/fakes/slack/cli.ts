/**
 * `npm run fake:slack`: a local Slack for trying dreambot by hand. Starts the fake Web API, prints the
 * three .env lines that point dreambot at it, and reads commands from stdin that it sends, signed, to
 * the running bot's /slack/events, as Slack would. `show` prints the channel with its threads.
 */
import { createInterface } from 'node:readline';
import { SlackDriver } from './driver.ts';
import { FakeWorkspace, seedWorkspace, startFakeSlack } from './index.ts';

const port = Number(process.env.FAKE_SLACK_PORT ?? 3100);
const target = process.env.DREAMBOT_SLACK_URL ?? 'http://127.0.0.1:3000/slack/events';
const fake = await startFakeSlack({
  port,
  botToken: process.env.FAKE_SLACK_BOT_TOKEN ?? 'xoxb-fake-local-token',
  signingSecret: process.env.FAKE_SLACK_SIGNING_SECRET ?? 'fake-local-signing-secret',
  shareDelayMs: 200,
});
const people = seedWorkspace(fake.ws);
const driver = new SlackDriver(fake, target);
let user = people.ana.id;
const channel = people.general.id;

console.log(`Fake Slack on ${fake.url} (workspace ${fake.ws.teamId}, #general = ${channel})
Start dreambot with:
  SLACK_API_URL=${fake.apiUrl}
  SLACK_BOT_TOKEN=${fake.ws.botToken}
  SLACK_SIGNING_SECRET=${fake.ws.signingSecret}
Requests go to ${target} (DREAMBOT_SLACK_URL). Type:
  /dream a red fox in snow --ar 9:16      any slash command, as the current user in #general
  @ a paper boat --res 540p               an @mention (add "in <ts>" first to post in a thread: in 1700000000.000100 @ …)
  submit prompt=… aspect=9:16              submit the last modal opened for the current user
  click <ts> <action_id>                  click a button (dream_reroll, dream_remix, dream_extend, dream_upscale, dream_delete)
  react <ts>                              🔁 on a message
  home                                    open the App Home (then: show home)
  as ana|bo|cy                            switch user (ana is a workspace admin)
  show | show home                        the channel with its threads | the current user's Home
  state                                   everything, as JSON (also GET ${fake.url}/_fake/state)`);

function show(): void {
  for (const m of fake.ws.history(channel)) {
    console.log(`[${m.ts}] ${m.user}: ${FakeWorkspace.textOf(m).replace(/\n/g, ' | ')}${m.files ? ` 📎 ${m.files.join(',')}` : ''}`);
    for (const r of fake.ws.thread(channel, m.ts)) console.log(`    └ [${r.ts}] ${r.user}: ${FakeWorkspace.textOf(r).replace(/\n/g, ' | ')}${r.files ? ` 📎 ${r.files.join(',')}` : ''}`);
  }
  for (const e of fake.ws.ephemeralsFor(user)) console.log(`  (only you) ${e.text}`);
}

async function handle(line: string): Promise<void> {
  const input = line.trim();
  if (!input) return;
  let m: RegExpExecArray | null;
  if ((m = /^(\/[\w-]+)\s*(.*)$/.exec(input))) {
    const res = await driver.command(m[1]!, m[2]!, user, channel);
    return void console.log(`→ ${res.status} in ${res.ms.toFixed(0)} ms ${res.text}`);
  }
  if ((m = /^(?:in\s+(\d+\.\d+)\s+)?@\s*(.*)$/.exec(input))) {
    const { sent } = await driver.mention(user, channel, m[2]!, m[1] ? { threadTs: m[1] } : {});
    return void console.log(`→ ${sent.status} (${sent.eventId})`);
  }
  if ((m = /^submit\s*(.*)$/.exec(input))) {
    const view = [...fake.ws.views.values()].reverse().find((v) => v.user === user && v.type === 'modal');
    if (!view) return void console.log('no modal open for this user');
    const values: Record<string, string> = {};
    for (const pair of m[1]!.match(/(\w+)=("[^"]*"|\S+)/g) ?? []) {
      const [k, ...rest] = pair.split('=');
      values[k!] = rest.join('=').replace(/^"|"$/g, '');
    }
    const res = await driver.submitView(user, view.id, values);
    return void console.log(`→ ${res.status} ${res.text}`);
  }
  if ((m = /^click\s+(\d+\.\d+)\s+(\w+)$/.exec(input))) return void console.log(`→ ${(await driver.clickButton(user, channel, m[1]!, m[2]!)).status}`);
  if ((m = /^react\s+(\d+\.\d+)$/.exec(input))) return void console.log(`→ ${(await driver.react(user, channel, m[1]!, 'repeat')).status}`);
  if (input === 'home') return void console.log(`→ ${(await driver.homeOpened(user)).status}`);
  if ((m = /^as\s+(\w+)$/.exec(input))) {
    const found = [...fake.ws.users.values()].find((u) => u.name === m![1]);
    if (found) user = found.id;
    return void console.log(`you are ${found ? found.name : 'unchanged (unknown user)'}`);
  }
  if (input === 'show') return show();
  if (input === 'show home') return void console.log(JSON.stringify(fake.ws.homes.get(user)?.view ?? null, null, 2));
  if (input === 'state') return void console.log(JSON.stringify(await (await fetch(`${fake.url}/_fake/state`)).json(), null, 2));
  console.log('?');
}

const rl = createInterface({ input: process.stdin, prompt: '> ' });
rl.prompt();
rl.on('line', (line) => {
  handle(line).catch((err: unknown) => console.log(`error: ${err instanceof Error ? err.message : String(err)}`)).finally(() => rl.prompt());
});
rl.on('close', () => void fake.close().then(() => process.exit(0)));
