/**
 * One short prompt tip, shown under the "queued" reply when a prompt is likely to disappoint. Video
 * models do best with one subject, one action, one camera move; they render lettering badly and cannot
 * keep a change of identity coherent over 5 seconds. Pure, so tests read it as a table.
 */
const TEXT_IN_FRAME = /\b(?:(?:says?|saying|reads?|reading|spells?|spelling|text|caption|subtitle|lettering|headline|logo)\s*(?:that\s+)?(?:says?\s*)?["“'‘][^"”'’]{1,80}["”'’]|(?:with|showing|displaying|write|writes|written)\s+(?:the\s+)?(?:text|words?|caption|letters|sign|title)\b)/i;
const TRANSFORMATION = /\b(?:turns?|turning|transforms?|transforming|morphs?|morphing|changes?|changing|evolves?|evolving)\s+into\b|\bbecomes?\s+an?\b|\bthen\s+(?:turns?|becomes?|changes?)\b/i;

export const MIN_WORDS = 6;
export const MAX_WORDS = 200;

export function promptTip(prompt: string): string | null {
  const words = prompt.trim().split(/\s+/).filter(Boolean).length;
  if (words > 0 && words < MIN_WORDS) {
    return 'Tip: short prompts leave a lot to chance. Name the subject, what it does, where, the light and one camera move, e.g. "a red fox trots through fresh snow at dawn, low tracking shot".';
  }
  if (words > MAX_WORDS) {
    return `Tip: at ${words} words the model keeps only part of it. One subject, one action and one camera move in 1-3 sentences works best.`;
  }
  if (TEXT_IN_FRAME.test(prompt)) {
    return 'Tip: video models draw lettering badly, so words in the frame usually come out garbled. Leave the text out and add it afterwards.';
  }
  if (TRANSFORMATION.test(prompt)) {
    return 'Tip: one clip is one continuous shot, and "X turns into Y" rarely holds together. Try a start image and an end image (the image and end_image options) instead.';
  }
  return null;
}
