import { PreviewBackend } from '../../src/backends/preview.ts';
import { resolveBinaries, resolveFontPath } from '../../src/media/ffmpeg.ts';
import { backendContract } from '../contract/backend-contract.ts';

backendContract('preview', async () => {
  const bins = await resolveBinaries({});
  const backend = new PreviewBackend({ bins, fontPath: await resolveFontPath(), slots: 1 });
  return { backend, ffprobe: bins.ffprobe };
});
