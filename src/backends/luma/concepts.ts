import { ErrorCode, transientError, userError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { cameraMoves, type CameraMove } from '../../media/sizes.ts';

/**
 * Camera moves go to Luma as `concepts`, whose keys are whatever /generations/concepts/list says today
 * (backend-luma.md §3). The list is fetched once and kept for an hour; admission sees the moves it
 * allows through `capabilities()` as soon as the first fetch is in, and submit checks again.
 */
export class ConceptCatalog {
  private keys: Set<string> | undefined;
  private fetchedAt = 0;
  private loading: Promise<Set<string>> | undefined;
  private lastWarm = 0;

  constructor(
    private readonly fetchList: () => Promise<string[]>,
    private readonly log: Logger,
    private readonly ttlMs = 60 * 60 * 1000,
  ) {}

  /** dreambot's camera moves that Luma offers (all of them until the list is known). */
  cameraMoves(): readonly CameraMove[] {
    const keys = this.keys;
    return keys ? cameraMoves.filter((move) => keys.has(move)) : cameraMoves;
  }

  /** Starts a fetch in the background, at most every 30 s; failures only log (submit will try again). */
  warm(): void {
    if (Date.now() - this.lastWarm < 30_000) return;
    this.lastWarm = Date.now();
    this.get().catch((err: unknown) => this.log.debug({ err }, 'luma concepts list not fetched yet'));
  }

  async get(): Promise<ReadonlySet<string>> {
    if (this.keys && Date.now() - this.fetchedAt < this.ttlMs) return this.keys;
    this.loading ??= this.fetchList().then(
      (list) => {
        this.keys = new Set(list.filter((k) => typeof k === 'string'));
        this.fetchedAt = Date.now();
        return this.keys;
      },
    ).finally(() => {
      this.loading = undefined;
    });
    try {
      return await this.loading;
    } catch (error) {
      if (this.keys) return this.keys; // a stale list beats failing the job
      throw transientError(ErrorCode.BackendUnavailable, 'could not fetch the Luma concepts list', { cause: error });
    }
  }

  /** The concept key for a camera move, or a user error naming the moves that work. */
  async conceptFor(camera: CameraMove | undefined): Promise<string | undefined> {
    if (!camera) return undefined;
    const keys = await this.get();
    if (keys.has(camera)) return camera;
    const offered = cameraMoves.filter((m) => keys.has(m));
    throw userError(ErrorCode.UnsupportedOperation,
      `The luma backend doesn't offer the camera move ${camera} right now. Choose one of: ${offered.join(', ') || '(none)'}. Nothing was charged.`);
  }
}
