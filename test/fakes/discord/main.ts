/**
 * `npm run fake:discord`: a local Discord to try dreambot against, with no account and no network.
 * Prints the environment to point dreambot at it, then reads commands on stdin to act as members.
 */
import { createInterface } from 'node:readline';
import { FakeDiscord, type FakeMessage } from './index.ts';

const port = Number(process.env.FAKE_DISCORD_PORT ?? 8790);
const fake = await FakeDiscord.start({ port });
const { guild, channel } = fake.addGuild({ name: 'Local Server' });
const you = fake.addUser('you');
const friend = fake.addUser('friend');
fake.addMember(guild, you, { admin: true });
fake.addMember(guild, friend);

const env = { ...fake.env(), ALLOW_PRIVATE_IMAGE_URLS: 'true' };
process.stdout.write(`Fake Discord on ${fake.baseUrl} (server "${guild.name}" ${guild.id}, #${channel.name} ${channel.id}).
Point dreambot at it:

${Object.entries(env).map(([k, v]) => `  export ${k}=${v}`).join('\n')}

then: dreambot commands register --guild ${guild.id} && dreambot start
Commands here: dream <prompt> | credits | click <message id> <reroll|remix|extend|upscale|delete> | react <message id> | messages | disconnect | quit
`);

const line = (m: FakeMessage) => `${m.id} ${m.channelId === channel.id ? '#general' : `thread ${m.channelId}`}: ${m.content.split('\n')[0]?.slice(0, 100) ?? ''}${m.attachments.length ? ` [${m.attachments.map((a) => `${a.filename} ${a.size} B`).join(', ')}]` : ''}`;
fake.on('messageCreate', (m: FakeMessage) => process.stdout.write(`+ ${line(m)}\n`));
fake.on('messageUpdate', (m: FakeMessage) => process.stdout.write(`~ ${line(m)}\n`));
fake.on('gateway:identify', () => process.stdout.write('* a bot identified\n'));
fake.on('gateway:resumed', () => process.stdout.write('* a bot resumed\n'));

const rl = createInterface({ input: process.stdin });
rl.on('line', (input) => {
  const [cmd, ...args] = input.trim().split(/\s+/);
  try {
    switch (cmd) {
      case 'dream':
        fake.sendCommand({ name: 'dream', channel, user: you, options: { prompt: args.join(' ') } });
        break;
      case 'credits':
        fake.sendCommand({ name: 'dream-credits', channel, user: you });
        break;
      case 'click': {
        const message = fake.message(args[0] ?? '');
        if (!message) throw new Error('no such message');
        const id = message.components.flatMap((r) => (r.components as { custom_id?: string }[]) ?? []).find((c) => c.custom_id?.startsWith(`dream:${args[1]}:`))?.custom_id;
        if (!id) throw new Error('no such button');
        fake.clickButton({ message, customId: id, user: friend });
        break;
      }
      case 'react': {
        const message = fake.message(args[0] ?? '');
        if (!message) throw new Error('no such message');
        fake.addReaction({ message, user: friend });
        break;
      }
      case 'messages':
        for (const m of fake.messages().slice(-10)) process.stdout.write(`  ${line(m)}\n`);
        break;
      case 'disconnect':
        fake.disconnect();
        break;
      case 'quit':
        void fake.stop().then(() => process.exit(0));
        break;
      case '':
        break;
      default:
        process.stdout.write('commands: dream <prompt> | credits | click <id> <action> | react <id> | messages | disconnect | quit\n');
    }
  } catch (error) {
    process.stdout.write(`! ${(error as Error).message}\n`);
  }
});
process.once('SIGINT', () => void fake.stop().then(() => process.exit(0)));
