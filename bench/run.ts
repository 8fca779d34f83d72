/**
 * `npm run bench`: every benchmark, one after the other (never in parallel: they share two cores), each
 * against its baseline measured in the same run. Prints one JSON line per benchmark.
 */
const benches = [
  './admission.bench.ts', './fairness.bench.ts', './preview.bench.ts', './luma-overhead.bench.ts', './comfyui-pool.bench.ts',
  './discord-ack.bench.ts', './slack-ack.bench.ts',
];

for (const file of benches) {
  const mod = (await import(file)) as { main: () => Promise<Record<string, unknown>> };
  const started = Date.now();
  const result = await mod.main();
  console.log(JSON.stringify({ ...result, benchSeconds: Math.round((Date.now() - started) / 1000) }));
}
process.exit(0);
