
function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Words or phrases matched whole and case-insensitively, so "ass" does not block "class". */
export function findBlocked(prompt: string, words: string[]): string | null {
  const normalized = prompt.normalize('NFKC').toLowerCase();
  for (const word of words) {
    const w = word.normalize('NFKC').toLowerCase().trim();
    if (!w) continue;
    if (new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRegExp(w)}($|[^\\p{L}\\p{N}])`, 'u').test(normalized)) return word;
  }
  return null;
}
