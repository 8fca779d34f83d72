import type { Redis } from 'ioredis';
import type { BackendName, Config } from './config.ts';
import { secretValues } from './config.ts';
import { connectDatabase, type Database } from './db/client.ts';
import { migrateDatabase } from './db/migrate.ts';
import { createLogger, type Logger } from './log.ts';
import { admit, type AdmissionInput, type Admitted } from './admission.ts';
import { HoldWriter } from './ledger/admit-hold.ts';
import { holdLease, releaseLease } from './queue/lease.ts';
import { TeamDirectory } from './team-directory.ts';
import { createBackends } from './backends/registry.ts';
import type { Backend } from './backends/types.ts';
import { endUnsuccessful, getGeneration } from './generations.ts';
import { resolveBinaries, resolveFontPath, type ResolvedBinaries } from './media/ffmpeg.ts';
import { Dispatcher } from './queue/dispatcher.ts';
import { GenerationWorkers } from './queue/generation-worker.ts';
import { QueueSet, redisConnection } from './queue/queues.ts';
import { reconcile } from './queue/reconciler.ts';
import { Signals } from './queue/signals.ts';
import { BackendHealth } from './backends/health.ts';
import { DeliveryWorker, type Deliverer } from './queue/delivery-worker.ts';
import { userError, ErrorCode } from './errors.ts';

export type Role = 'all' | 'bot' | 'worker';

export interface RuntimeOptions {
  log?: Logger;
  /** Apply pending migrations first (under the advisory lock). */
  migrate?: boolean;
  now?: () => Date;
  /** Replaces or adds backends (tests inject fakes here rather than branching on NODE_ENV). */
  backends?: (defaults: Map<BackendName, Backend>, media: { bins: ResolvedBinaries; fontPath: string }) => Map<BackendName, Backend>;
}

/**
 * The shared parts every process needs (Postgres, Redis, queues, backends, admission), plus the worker
 * side on demand. All coordination goes through Redis and Postgres, never process memory, so any number
 * of these can run on any number of machines.
 */
export class Runtime {
  readonly queues: QueueSet;
  readonly signals: Signals;
  readonly health: BackendHealth;
  dispatcher: Dispatcher | undefined;
  workers: GenerationWorkers | undefined;
  delivery: DeliveryWorker | undefined;
  private reconcileTimer: NodeJS.Timeout | undefined;
  private readonly extraConnections: Redis[] = [];
  private readonly holds: HoldWriter;
  private readonly directory: TeamDirectory;

  private constructor(
    readonly config: Config,
    readonly log: Logger,
    readonly database: Database,
    readonly redis: Redis,
    readonly bins: ResolvedBinaries,
    readonly backends: Map<BackendName, Backend>,
    private readonly now: () => Date,
  ) {
    const queueConnection = redisConnection(config, 'worker');
    this.extraConnections.push(queueConnection);
    this.queues = new QueueSet(queueConnection, config.REDIS_PREFIX, backends.keys());
    this.signals = new Signals(redis, config.REDIS_PREFIX, log);
    this.health = new BackendHealth(redis, config.REDIS_PREFIX);
    this.holds = new HoldWriter(database.sql);
    this.directory = new TeamDirectory(database.db, database.sql, config.DEFAULT_TEAM_CREDITS);
  }

  static async create(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
    const log = options.log ?? createLogger({ level: config.LOG_LEVEL, secrets: secretValues(config) });
    if (options.migrate !== false) await migrateDatabase(config.DATABASE_URL);
    const database = connectDatabase(config.DATABASE_URL);
    const redis = redisConnection(config, 'producer');
    const bins = await resolveBinaries({ ffmpegPath: config.FFMPEG_PATH, ffprobePath: config.FFPROBE_PATH });
    log.debug({ ffmpeg: bins.version.ffmpeg, source: bins.source }, 'media binaries');
    const fontPath = await resolveFontPath(config.FONT_PATH);
    const defaults = createBackends(config, { bins, fontPath }, log);
    const backends = options.backends ? options.backends(defaults, { bins, fontPath }) : defaults;
    return new Runtime(config, log, database, redis, bins, backends, options.now ?? (() => new Date()));
  }

  get db() {
    return this.database.db;
  }

  /** The one admission path, as every entry point calls it. */
  admit(input: AdmissionInput): Promise<Admitted> {
    return admit({ db: this.db, sql: this.database.sql, holds: this.holds, directory: this.directory, config: this.config, backends: this.backends, now: this.now, nudge: () => this.nudge() }, input);
  }

  /**
   * Work is waiting or a slot freed. A dispatcher's pass covers every team and backend, so a process with
   * its own dispatcher runs that one; only processes without one (bots) tell the workers through Redis.
   */
  nudge(): void {
    if (this.dispatcher) this.dispatcher.nudge();
    else this.signals.nudge();
  }

  /**
   * A named lease shared by every process (src/queue/lease.ts): takes or renews it for `owner`, and says
   * whether `owner` holds it now. Adapters use it so one process at a time does a job's chat-side work.
   */
  holdLease(name: string, owner: string, ttlMs: number): Promise<boolean> {
    return holdLease(this.redis, `${this.config.REDIS_PREFIX}:lease:${name}`, owner, ttlMs);
  }

  releaseLease(name: string, owner: string): Promise<void> {
    return releaseLease(this.redis, `${this.config.REDIS_PREFIX}:lease:${name}`, owner);
  }

  /** Cancels a generation that has not ended; its hold is released in the same transaction. */
  async cancel(generationId: string): Promise<boolean> {
    const generation = await getGeneration(this.db, generationId);
    if (!generation) throw userError(ErrorCode.NotFound, `No job ${generationId}.`);
    const ended = await endUnsuccessful(this.db, generationId, 'cancelled');
    if (ended) {
      this.workers?.cancelLocal(generationId);
      this.signals.publish({ type: 'cancel', generationId });
      this.nudge();
    }
    return ended;
  }

  /** Starts the worker side: dispatcher, one BullMQ worker per backend, reconciler, signal listener. */
  async startWorkers(): Promise<void> {
    const slots = new Map([...this.backends].map(([name, b]) => [name, b.limits.slots] as const));
    this.dispatcher = new Dispatcher({ db: this.db, queues: this.queues, config: this.config, log: this.log, slots });
    for (const [name, queue] of this.queues.generation) await queue.setGlobalConcurrency(slots.get(name) ?? 1);
    const workerConnection = redisConnection(this.config, 'worker');
    this.extraConnections.push(workerConnection);
    this.workers = new GenerationWorkers({
      db: this.db, config: this.config, log: this.log, backends: this.backends, queues: this.queues,
      connection: workerConnection, ffprobe: this.bins.ffprobe, onSlotFreed: () => this.nudge(), health: this.health,
    });
    this.workers.start();
    await this.workers.waitUntilReady();
    const subscriber = redisConnection(this.config, 'worker');
    this.extraConnections.push(subscriber);
    await this.signals.subscribe(subscriber, (signal) => {
      if (signal.type === 'nudge') this.dispatcher?.nudge();
      if (signal.type === 'cancel') this.workers?.cancelLocal(signal.generationId);
    });
    this.dispatcher.start();
    this.reconcileTimer = setInterval(() => {
      reconcile({ db: this.db, queues: this.queues, config: this.config, log: this.log }).catch((err: unknown) => this.log.error({ err }, 'reconcile failed'));
    }, this.config.RECONCILE_INTERVAL_MS);
    this.reconcileTimer.unref();
  }

  /** Starts delivering results to chat (bot role): one Deliverer per platform this process serves. */
  async startDelivery(deliverers: Deliverer[]): Promise<void> {
    const connection = redisConnection(this.config, 'worker');
    this.extraConnections.push(connection);
    this.delivery = new DeliveryWorker({ db: this.db, log: this.log, connection, prefix: this.config.REDIS_PREFIX });
    for (const deliverer of deliverers) this.delivery.register(deliverer);
    this.delivery.start();
    await this.delivery.waitUntilReady();
  }

  /** Is any worker process connected to the generation queues right now? */
  async workersOnline(): Promise<number> {
    let count = 0;
    for (const queue of this.queues.generation.values()) count += await queue.getWorkersCount();
    return count;
  }

  /** Graceful: stop taking work, let running jobs finish within SHUTDOWN_GRACE_MS, hand back the rest. */
  async close(graceMs = this.config.SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.reconcileTimer) clearInterval(this.reconcileTimer);
    // A command still in flight when we quit (BullMQ's version check on a queue opened moments ago) fails
    // with EPIPE, which ioredis would print as an "Unhandled error event" on the way out.
    for (const connection of [...this.extraConnections, this.redis]) connection.on('error', () => undefined);
    await this.dispatcher?.stop();
    await this.workers?.close(graceMs);
    await this.delivery?.close();
    await this.signals.close();
    await this.queues.close();
    for (const connection of this.extraConnections) await connection.quit().catch(() => undefined);
    await this.redis.quit().catch(() => undefined);
    await Promise.all([...this.backends.values()].map((b) => b.close?.()));
    await this.database.close();
  }
}
