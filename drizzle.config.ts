import { defineConfig } from 'drizzle-kit';

// Generation only (npm run db:generate): migrations are applied by `dreambot migrate`, never by drizzle-kit push.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema.ts',
  out: './migrations',
});
