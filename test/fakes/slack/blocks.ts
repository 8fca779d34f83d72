/**
 * The Block Kit limits Slack enforces (platform-slack.md §6), checked the way Slack answers them:
 * `invalid_blocks` for messages, `invalid_arguments` for views, each with `response_metadata.messages`.
 * Not a full schema: the limits an app is likely to hit, so a test fails where Slack would.
 */

const len = (v: unknown) => (typeof v === 'string' ? [...v].length : 0);

function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { text?: unknown }).text === 'string') return (v as { text: string }).text;
  return undefined;
}

const BLOCK_TYPES = new Set(['section', 'actions', 'context', 'divider', 'header', 'image', 'input', 'rich_text', 'markdown', 'file', 'video']);
const ELEMENT_TYPES = new Set([
  'button', 'static_select', 'external_select', 'users_select', 'conversations_select', 'channels_select', 'overflow',
  'datepicker', 'timepicker', 'checkboxes', 'radio_buttons', 'plain_text_input', 'number_input', 'file_input', 'image',
  'multi_static_select', 'email_text_input', 'url_text_input', 'rich_text_input',
]);

function checkElement(el: Record<string, unknown>, where: string, problems: string[]): void {
  if (!ELEMENT_TYPES.has(String(el.type))) problems.push(`${where}: unknown element type "${String(el.type)}"`);
  if (len(el.action_id) > 255) problems.push(`${where}.action_id: must be at most 255 characters`);
  if (el.type === 'button') {
    const text = textOf(el.text);
    if (!text) problems.push(`${where}.text: required`);
    if (len(text) > 75) problems.push(`${where}.text: must be at most 75 characters`);
    if (len(el.value) > 2000) problems.push(`${where}.value: must be at most 2000 characters`);
    if (len(el.url) > 3000) problems.push(`${where}.url: must be at most 3000 characters`);
  }
  if (el.type === 'static_select' || el.type === 'checkboxes' || el.type === 'radio_buttons') {
    const options = el.options as unknown[] | undefined;
    if (!Array.isArray(options) || options.length === 0) problems.push(`${where}.options: required`);
    else if (options.length > 100) problems.push(`${where}.options: must be at most 100 items`);
  }
  if (el.type === 'file_input' && el.max_files !== undefined && (Number(el.max_files) < 1 || Number(el.max_files) > 10)) {
    problems.push(`${where}.max_files: must be between 1 and 10`);
  }
}

export function blockProblems(blocks: unknown, surface: 'message' | 'modal' | 'home'): string[] {
  const problems: string[] = [];
  if (!Array.isArray(blocks)) return ['blocks: must be an array'];
  const max = surface === 'message' ? 50 : 100;
  if (blocks.length > max) problems.push(`blocks: must be at most ${max} items`);
  blocks.forEach((raw, i) => {
    const where = `blocks[${i}]`;
    if (!raw || typeof raw !== 'object') return void problems.push(`${where}: must be an object`);
    const b = raw as Record<string, unknown>;
    if (!BLOCK_TYPES.has(String(b.type))) problems.push(`${where}: unknown block type "${String(b.type)}"`);
    if (len(b.block_id) > 255) problems.push(`${where}.block_id: must be at most 255 characters`);
    if (b.type === 'input' && surface === 'message') problems.push(`${where}: input blocks are only allowed in views`);
    switch (b.type) {
      case 'section': {
        const text = textOf(b.text);
        if (!text && !Array.isArray(b.fields)) problems.push(`${where}: needs text or fields`);
        if (len(text) > 3000) problems.push(`${where}.text: must be at most 3000 characters`);
        if (Array.isArray(b.fields)) {
          if (b.fields.length > 10) problems.push(`${where}.fields: must be at most 10 items`);
          b.fields.forEach((f, j) => { if (len(textOf(f)) > 2000) problems.push(`${where}.fields[${j}]: must be at most 2000 characters`); });
        }
        if (b.accessory) checkElement(b.accessory as Record<string, unknown>, `${where}.accessory`, problems);
        break;
      }
      case 'header':
        if (len(textOf(b.text)) > 150) problems.push(`${where}.text: must be at most 150 characters`);
        break;
      case 'actions': {
        const elements = b.elements as unknown[] | undefined;
        if (!Array.isArray(elements) || elements.length === 0) problems.push(`${where}.elements: required`);
        else {
          if (elements.length > 25) problems.push(`${where}.elements: must be at most 25 items`);
          elements.forEach((el, j) => checkElement(el as Record<string, unknown>, `${where}.elements[${j}]`, problems));
        }
        break;
      }
      case 'context':
        if (!Array.isArray(b.elements) || b.elements.length === 0 || b.elements.length > 10) problems.push(`${where}.elements: 1 to 10 items`);
        break;
      case 'image':
        if (!b.image_url && !b.slack_file) problems.push(`${where}: needs image_url or slack_file`);
        if (!b.alt_text) problems.push(`${where}.alt_text: required`);
        break;
      case 'markdown':
        if (len(b.text) > 12000) problems.push(`${where}.text: must be at most 12000 characters`);
        break;
      case 'input':
        if (!textOf(b.label)) problems.push(`${where}.label: required`);
        if (len(textOf(b.label)) > 2000) problems.push(`${where}.label: must be at most 2000 characters`);
        if (!b.element) problems.push(`${where}.element: required`);
        else checkElement(b.element as Record<string, unknown>, `${where}.element`, problems);
        break;
      default:
        break;
    }
  });
  return problems;
}

export function viewProblems(view: unknown, surface: 'modal' | 'home'): string[] {
  if (!view || typeof view !== 'object') return ['view: required'];
  const v = view as Record<string, unknown>;
  const problems: string[] = [];
  if (v.type !== surface) problems.push(`view.type: must be "${surface}"`);
  if (surface === 'modal') {
    const title = textOf(v.title);
    if (!title) problems.push('view.title: required');
    for (const key of ['title', 'submit', 'close']) if (len(textOf(v[key])) > 24) problems.push(`view.${key}: must be at most 24 characters`);
    const hasInput = Array.isArray(v.blocks) && v.blocks.some((b) => (b as { type?: unknown }).type === 'input');
    if (hasInput && !v.submit) problems.push('view.submit: required when the view has input blocks');
  }
  if (len(v.private_metadata) > 3000) problems.push('view.private_metadata: must be at most 3000 characters');
  if (len(v.callback_id) > 255) problems.push('view.callback_id: must be at most 255 characters');
  problems.push(...blockProblems(v.blocks, surface).map((p) => `view.${p}`));
  return problems;
}
