import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, secretValues } from '../config.ts';
import { createLogger } from '../log.ts';
import { migrateDatabase } from '../db/migrate.ts';
import { Runtime, type Role } from '../runtime.ts';
import { commandsRegister } from './commands-register.ts';
import { credits } from './credits.ts';
import { doctor } from './doctor.ts';
import { dream } from './dream.ts';
import { jobs } from './jobs.ts';
import { CliExit, describeError, EXIT, refuse } from './output.ts';
import { start } from './start.ts';

const usage = `dreambot: short AI video clips for teams, from chat or the command line

  dreambot migrate
  dreambot start [--role all|bot|worker]
  dreambot dream "<prompt>" [--image FILE|URL] [--end-image FILE|URL] [--team NAME] [--user NAME]
                 [--backend auto|preview|luma|comfyui] [--model M] [--aspect R] [--duration 5s|9s]
                 [--resolution R] [--camera NAME] [--loop] [--out FILE] [--json]
  dreambot credits show|set|grant --team NAME [--limit N --period monthly|weekly|daily|none | --amount N] [--json]
  dreambot jobs list|show ID|cancel ID [--team NAME] [--state S] [--json]
  dreambot commands register [--guild ID] [--json]
  dreambot doctor

Configuration comes from the environment (see .env.example); with none, it uses local Redis and
Postgres and the offline preview backend.`;

const options = {
  role: { type: 'string' }, image: { type: 'string' }, 'end-image': { type: 'string' }, team: { type: 'string' },
  user: { type: 'string' }, backend: { type: 'string' }, model: { type: 'string' }, aspect: { type: 'string' },
  duration: { type: 'string' }, resolution: { type: 'string' }, camera: { type: 'string' }, loop: { type: 'boolean' },
  out: { type: 'string' }, json: { type: 'boolean' }, limit: { type: 'string' }, period: { type: 'string' },
  amount: { type: 'string' }, state: { type: 'string' }, guild: { type: 'string' }, help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

function parse(argv: string[]) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (error) {
    refuse(`${(error as Error).message.replace(/\s*\n\s*/g, ' ')} (see dreambot --help)`);
  }
}

async function withRuntime<T>(fn: (runtime: Runtime) => Promise<T>, graceMs?: number): Promise<T> {
  const config = loadConfig();
  // One-shot commands talk to a person: only warnings and errors as log lines, unless LOG_LEVEL says otherwise.
  const level = config.logLevelSet ? config.LOG_LEVEL : 'warn';
  const runtime = await Runtime.create(config, { log: createLogger({ level, secrets: secretValues(config) }) });
  try {
    return await fn(runtime);
  } finally {
    await runtime.close(graceMs);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    process.stdout.write(`${usage}\n`);
    return command || values.help ? EXIT.ok : EXIT.refused;
  }
  switch (command) {
    case 'migrate': {
      const config = loadConfig();
      await migrateDatabase(config.DATABASE_URL);
      process.stdout.write('Database is up to date.\n');
      return EXIT.ok;
    }
    case 'start': {
      const role = (values.role ?? 'all') as Role;
      if (!['all', 'bot', 'worker'].includes(role)) refuse('--role must be all, bot or worker.');
      const runtime = await Runtime.create(loadConfig());
      await start(runtime, role);
      return EXIT.ok;
    }
    case 'dream': {
      if (rest.length !== 1) refuse('Give the prompt as one quoted argument: dreambot dream "a drone rises over a misty forest"');
      const outcome = await withRuntime((rt) => dream(rt, {
        prompt: rest[0]!, image: values.image, endImage: values['end-image'], team: values.team, user: values.user,
        backend: values.backend, model: values.model, aspect: values.aspect, duration: values.duration,
        resolution: values.resolution, camera: values.camera, loop: values.loop, out: values.out, json: values.json,
      }), 0);
      if (values.json) process.stdout.write(`${JSON.stringify(outcome.result)}\n`);
      else if (outcome.code !== EXIT.ok) process.stderr.write(`dreambot: ${outcome.result.error}\n`);
      return outcome.code;
    }
    case 'credits':
      await withRuntime((rt) => credits(rt, { action: rest[0] ?? 'show', team: values.team, limit: values.limit, period: values.period, amount: values.amount, json: values.json }));
      return EXIT.ok;
    case 'jobs':
      await withRuntime((rt) => jobs(rt, { action: rest[0] ?? 'list', id: rest[1], team: values.team, state: values.state, json: values.json }));
      return EXIT.ok;
    case 'commands':
      if (rest[0] !== 'register') refuse('Usage: dreambot commands register [--guild ID]');
      await commandsRegister(loadConfig(), { guild: values.guild, json: values.json });
      return EXIT.ok;
    case 'doctor':
      return doctor(loadConfig());
    default:
      refuse(`Unknown command "${command}" (see dreambot --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const { code, line } = describeError(error);
    if (process.argv.includes('--json') && !(error instanceof CliExit && code === EXIT.ok)) {
      process.stdout.write(`${JSON.stringify({ state: code === EXIT.refused ? 'refused' : 'failed', error: line })}\n`);
    }
    process.stderr.write(`dreambot: ${line}\n`);
    process.exit(code);
  },
);
