import type { Redis } from 'ioredis';
import type { Logger } from '../log.ts';
import { Coalesced } from './coalesce.ts';

/**
 * Cross-process hints over Redis pub/sub: "work is waiting" and "cancel this job". They are only hints;
 * the periodic dispatcher pass and the workers' state checks keep everything correct when one is lost.
 */
export type Signal = { type: 'nudge' } | { type: 'cancel'; generationId: string };

const NUDGE = JSON.stringify({ type: 'nudge' } satisfies Signal);

export class Signals {
  private subscriber: Redis | undefined;
  private readonly channel: string;
  private readonly nudges = new Coalesced(() =>
    this.publisher.publish(this.channel, NUDGE).then(() => undefined, (err: unknown) => this.log.warn({ err }, 'signal not published')));

  constructor(private readonly publisher: Redis, prefix: string, private readonly log: Logger) {
    this.channel = `${prefix}:signals`;
  }

  /**
   * "Work is waiting", coalesced: while one nudge is on its way, later ones fold into a single follow-up,
   * sent once the first is out, so a dispatcher reading before our commit still gets told after it. Under
   * load that is one publish per round trip instead of one per admission.
   */
  nudge(): void {
    this.nudges.call();
  }

  publish(signal: Signal): void {
    this.publisher.publish(this.channel, JSON.stringify(signal)).catch((err: unknown) => this.log.warn({ err }, 'signal not published'));
  }

  async subscribe(connection: Redis, handler: (signal: Signal) => void): Promise<void> {
    this.subscriber = connection;
    connection.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      try {
        handler(JSON.parse(message) as Signal);
      } catch (err) {
        this.log.warn({ err }, 'bad signal ignored');
      }
    });
    await connection.subscribe(this.channel);
  }

  async close(): Promise<void> {
    await this.subscriber?.quit().catch(() => undefined);
  }
}
