import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** Field names whose values are secrets wherever they appear in a log object. */
const redactPaths = [
  'token', 'apiKey', 'api_key', 'password', 'secret', 'authorization', 'signingSecret',
  '*.token', '*.apiKey', '*.api_key', '*.password', '*.secret', '*.authorization', '*.signingSecret',
  'headers.authorization', '*.headers.authorization', 'req.headers.authorization', 'req.headers.cookie',
  'config.DISCORD_TOKEN', 'config.SLACK_BOT_TOKEN', 'config.SLACK_SIGNING_SECRET', 'config.LUMA_API_KEY',
  'config.ASSET_SIGNING_SECRET', 'config.ADMIN_PASSWORD', 'config.assetSecret',
];

/**
 * Redacting by field name misses a token pasted into an error message or a URL, so the final line is
 * also scrubbed of every known secret value. pino has no hook for that after serialisation, hence
 * this small wrapper stream.
 */
function scrubbing(destination: DestinationStream, secrets: string[]): DestinationStream {
  if (secrets.length === 0) return destination;
  const escaped = secrets.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  return { write: (line: string) => destination.write(line.replace(pattern, '[REDACTED]')) };
}

export interface LoggerOptions {
  level?: string;
  secrets?: string[];
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const destination = options.destination ?? pino.destination({ dest: 2, sync: true });
  return pino(
    {
      level: options.level ?? 'info',
      base: { pid: process.pid },
      redact: { paths: redactPaths, censor: '[REDACTED]' },
    },
    scrubbing(destination, options.secrets ?? []),
  );
}
