/**
 * `npm run fake:luma [-- --port 4010 --dream-ms 8000]`: the fake Dream Machine API on a local port, for
 * trying the luma backend end to end by hand:
 *
 *   LUMA_BASE_URL=<printed url> LUMA_API_KEY=<printed key> npx dreambot dream "a fox in the snow" --backend luma
 *
 * Faults can be asked for in the prompt: [fake:fail=moderation], [fake:dream=20000], [fake:hang=90000],
 * [fake:nocallback] (see faults.ts).
 */
import { parseArgs } from 'node:util';
import { FakeLuma } from './fake-luma.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    host: { type: 'string', default: '127.0.0.1' },
    key: { type: 'string' },
    'queued-ms': { type: 'string', default: '1000' },
    'dream-ms': { type: 'string', default: '8000' },
    concurrency: { type: 'string', default: '10' },
    'creates-per-minute': { type: 'string', default: '20' },
    quiet: { type: 'boolean', default: false },
  },
});

const fake = await FakeLuma.start({
  port: Number(values.port),
  host: values.host!,
  ...(values.key ? { apiKey: values.key } : {}),
  timing: { queuedMs: Number(values['queued-ms']), dreamingMs: Number(values['dream-ms']) },
  limits: { concurrent: Number(values.concurrency), createsPerMinute: Number(values['creates-per-minute']) },
  log: values.quiet ? () => undefined : (line) => process.stderr.write(`[fake-luma] ${line}\n`),
});

process.stdout.write([
  `fake Luma Dream Machine API listening on ${fake.url}`,
  `API key: ${fake.apiKey}`,
  '',
  'Try it:',
  `  LUMA_BASE_URL=${fake.url} LUMA_API_KEY=${fake.apiKey} npx dreambot dream "a red fox runs through snow" --backend luma`,
  '',
  'Image requests also need PUBLIC_BASE_URL (and ASSET_SIGNING_SECRET) pointing at a running `dreambot start`,',
  'so the fake can fetch the input images. Prompt markers: [fake:fail=moderation] [fake:dream=20000] [fake:hang=90000]',
  '',
].join('\n'));

const stop = () => void fake.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
