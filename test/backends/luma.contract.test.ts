import { LumaBackend } from '../../src/backends/luma/backend.ts';
import { createLogger } from '../../src/log.ts';
import { resolveBinaries } from '../../src/media/ffmpeg.ts';
import { backendContract } from '../contract/backend-contract.ts';
import { FakeLuma } from '../fakes/luma/fake-luma.ts';

/** The real luma backend (SDK and all) against the fake service; no database, no Redis, no callbacks. */
backendContract('luma', async () => {
  const bins = await resolveBinaries({});
  const fake = await FakeLuma.start({ bins, timing: { queuedMs: 100, dreamingMs: 400 } });
  const backend = new LumaBackend({
    apiKey: fake.apiKey, baseURL: fake.url, pollMs: 150, slots: 2, createsPerMinute: 20,
    publicBaseUrl: undefined, assetSecret: 'contract-secret', log: createLogger({ level: 'silent' }),
  });
  return { backend, ffprobe: bins.ffprobe, cleanup: () => fake.close() };
});
