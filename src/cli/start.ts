import { startAdapters, type ChatAdapter } from '../../adapters/index.ts';
import { mountLumaCallbacks } from '../backends/luma/callbacks.ts';
import { createHttpServer } from '../http/server.ts';
import { createMetrics } from '../metrics.ts';
import type { Role, Runtime } from '../runtime.ts';

/**
 * `dreambot start [--role all|bot|worker]`. Every role serves HTTP (health and metrics are how an
 * orchestrator watches workers too); workers also dispatch and run jobs. SIGTERM stops taking work,
 * lets running jobs finish within SHUTDOWN_GRACE_MS and hands the rest back to the queue.
 */
export async function start(runtime: Runtime, role: Role): Promise<void> {
  const { log, config } = runtime;
  if (role === 'all' || role === 'worker') await runtime.startWorkers();
  const metrics = createMetrics({ db: runtime.db, queues: runtime.queues });
  const server = createHttpServer({ runtime, metrics });
  // Luma's callbacks may land on any process; they only wake the worker that polls, via Redis.
  mountLumaCallbacks(server, runtime);
  const adapters: ChatAdapter[] = role === 'all' || role === 'bot' ? await startAdapters(runtime, server) : [];
  const port = await server.listen(config.HTTP_PORT);
  log.info({ role, port, backends: [...runtime.backends.keys()], platforms: adapters.map((a) => a.platform) }, 'dreambot started');

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now; running jobs will be resumed elsewhere');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, graceMs: config.SHUTDOWN_GRACE_MS }, 'shutting down');
      void (async () => {
        for (const adapter of adapters) await adapter.stop().catch((err: unknown) => log.warn({ err, platform: adapter.platform }, 'adapter stop failed'));
        await server.close().catch((err: unknown) => log.warn({ err }, 'http close failed'));
        await runtime.close();
        log.info('stopped');
        resolve();
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
