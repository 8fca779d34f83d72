export const periods = ['monthly', 'weekly', 'daily', 'none'] as const;
export type Period = (typeof periods)[number];

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO-8601 week-numbering year and week of a UTC date. */
function isoWeek(date: Date): { year: number; week: number } {
  const d = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()));
  const day = d.getUTCDay() || 7;
  d.setUTCDate(d.getUTCDate() + 4 - day);
  const yearStart = Date.UTC(d.getUTCFullYear(), 0, 1);
  return { year: d.getUTCFullYear(), week: Math.ceil(((d.getTime() - yearStart) / 86_400_000 + 1) / 7) };
}

/** The key of the period `now` falls in; budgets reset when it changes. Periods are UTC. */
export function periodKey(period: Period, now: Date): string {
  switch (period) {
    case 'monthly':
      return `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}`;
    case 'weekly': {
      const { year, week } = isoWeek(now);
      return `${year}-W${pad(week)}`;
    }
    case 'daily':
      return `${now.getUTCFullYear()}-${pad(now.getUTCMonth() + 1)}-${pad(now.getUTCDate())}`;
    case 'none':
      return 'none';
  }
}

/** When the period containing `now` ends, or null for budgets that never reset. */
export function nextReset(period: Period, now: Date): Date | null {
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  const d = now.getUTCDate();
  switch (period) {
    case 'monthly':
      return new Date(Date.UTC(y, m + 1, 1));
    case 'weekly': {
      const day = now.getUTCDay() || 7;
      return new Date(Date.UTC(y, m, d + 8 - day));
    }
    case 'daily':
      return new Date(Date.UTC(y, m, d + 1));
    case 'none':
      return null;
  }
}
