import postgres from 'postgres';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { drizzle, type PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import { schema } from './schema.ts';

export type Db = PostgresJsDatabase<typeof schema>;
/** A transaction handle: the same query API as Db. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];
export type Executor = Db | Tx;

export interface Database {
  db: Db;
  sql: postgres.Sql;
  close(): Promise<void>;
}

export function connectDatabase(url: string, options: { max?: number } = {}): Database {
  const client = postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    // int8 (counts, credit amounts, serials) as JS numbers: credit amounts stay far below 2^53.
    types: {
      int8: { to: 20, from: [20], serialize: (v: number) => String(v), parse: (v: string) => Number(v) },
    },
  });
  const db = drizzle(client, { schema });
  return { db, sql: client, close: () => client.end({ timeout: 5 }) };
}

const dialect = new PgDialect();

/**
 * Runs a statement as a named prepared statement. drizzle's execute() sends raw SQL unprepared, so
 * Postgres would parse and plan admission's large statements on every request; prepared, they are
 * planned once per connection (about half of admission's time, measured in bench/admission).
 */
export async function executePrepared<T extends Record<string, unknown>>(client: postgres.Sql, query: SQL): Promise<T[]> {
  const { sql: text, params } = dialect.sqlToQuery(query);
  const rows = await client.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
  return rows as unknown as T[];
}
