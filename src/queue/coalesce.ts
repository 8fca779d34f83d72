/**
 * Runs `work` at once, or, when a run is already going, once more after it however many calls came in
 * meanwhile: a call is never lost (the follow-up starts after it), and a burst costs two runs at most.
 * Used for dispatcher passes and for the "work is waiting" signal.
 */
export class Coalesced {
  private running: Promise<void> | undefined;
  private again = false;

  /** `work` must not throw; it handles its own errors. */
  constructor(private readonly work: () => Promise<void>) {}

  call(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.work();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when no run is going. */
  async idle(): Promise<void> {
    await this.running;
  }
}
