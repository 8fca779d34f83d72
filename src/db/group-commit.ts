/**
 * Group commit for hot-path statements: while a batch is in flight, later calls wait and go together in
 * the next one. Under load a batch grows with the arrival rate, so what every statement pays once (the
 * protocol round, the snapshot, the commit and its WAL flush in Postgres; a socket write and a parse in
 * Node) is paid once per batch instead of once per request. When idle, a call goes out on the next turn
 * of the event loop, so it adds no waiting of its own.
 *
 * Hand-written because the libraries that batch (DataLoader and its kin) group calls by event-loop tick
 * and cache results by key: under load that sends many small batches, and a write must never be cached.
 */
export interface GroupCommitOptions<I> {
  /** Batches in flight at once. */
  maxInFlight: number;
  /** Items per batch. */
  maxBatch: number;
  /** Optional budget per batch by size (say, bytes); a batch always takes at least one item. */
  weigh?: (item: I) => number;
  maxWeight?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve: (value: O) => void;
  reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  private waiting: Waiting<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  /** `run` answers every item of a batch, in order: a value, or an Error for that item alone. */
  constructor(private readonly run: (items: I[]) => Promise<(O | Error)[]>, private readonly options: GroupCommitOptions<I>) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // The continuations woken by one socket read all run before this, so they share a batch.
        setImmediate(() => {
          this.scheduled = false;
          this.pump();
        });
      }
    });
  }

  private take(): number {
    const { maxBatch, weigh, maxWeight } = this.options;
    if (!weigh || maxWeight === undefined) return maxBatch;
    let n = 0;
    for (let total = 0; n < Math.min(maxBatch, this.waiting.length); n++) {
      total += weigh(this.waiting[n]!.item);
      if (total > maxWeight && n > 0) break;
    }
    return n;
  }

  private pump(): void {
    while (this.inFlight < this.options.maxInFlight && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, this.take());
      this.inFlight++;
      this.run(batch.map((w) => w.item))
        .then(
          (results) => {
            if (results.length !== batch.length) throw new Error(`group commit: ${results.length} answers for ${batch.length} items`);
            results.forEach((result, i) => (result instanceof Error ? batch[i]!.reject(result) : batch[i]!.resolve(result)));
          },
        )
        .catch((error: unknown) => {
          for (const w of batch) w.reject(error);
        })
        .finally(() => {
          this.inFlight--;
          this.pump();
        });
    }
  }
}
