import { FakeComfyUI } from './server.ts';

/**
 * `npm run fake:comfyui -- [count] [--prompt-seconds S] [--port P]`: N fake ComfyUI servers for local
 * trials; prints the COMFYUI_URLS line to paste into .env. Ctrl-C stops them.
 */
const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const count = Number(args.find((a) => /^\d+$/.test(a)) ?? 2);
const promptMs = Number(flag('--prompt-seconds') ?? 8) * 1000;
const basePort = Number(flag('--port') ?? 0);

const fakes: FakeComfyUI[] = [];
for (let i = 0; i < count; i++) {
  fakes.push(await FakeComfyUI.start({ port: basePort ? basePort + i : 0, promptMs, name: `fake-${i + 1}` }));
}
console.log(`COMFYUI_URLS=${fakes.map((f) => f.url.replace(/\/$/, '')).join(',')}`);
console.error(`${count} fake ComfyUI server(s), ${promptMs / 1000} s per prompt; Ctrl-C to stop`);
const stop = async () => {
  await Promise.all(fakes.map((f) => f.close()));
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
