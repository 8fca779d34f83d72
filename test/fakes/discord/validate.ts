import type { Json } from './state.ts';

/**
 * The checks Discord makes on message, modal, thread and command bodies that our adapter could get wrong,
 * answered as Discord does: 400 with code 50035 "Invalid Form Body" and an `errors` tree whose leaves are
 * `{ _errors: [{ code, message }] }` (resources/message.mdx, components/reference.mdx, interactions docs).
 */
export class FormErrors {
  private readonly tree: Json = {};
  add(path: (string | number)[], code: string, message: string): void {
    let node = this.tree;
    for (const key of path) node = (node[String(key)] ??= {}) as Json;
    ((node._errors ??= []) as Json[]).push({ code, message });
  }
  get empty(): boolean {
    return Object.keys(this.tree).length === 0;
  }
  body(): Json {
    return { code: 50035, message: 'Invalid Form Body', errors: this.tree };
  }
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function maxLen(errors: FormErrors, path: (string | number)[], value: unknown, max: number, min = 0): void {
  const s = str(value);
  if (s === undefined) return;
  if (s.length > max) errors.add(path, 'BASE_TYPE_MAX_LENGTH', `Must be ${max} or fewer in length.`);
  if (s.length < min) errors.add(path, 'BASE_TYPE_MIN_LENGTH', `Must be ${min} or more in length.`);
}

const BUTTON_STYLES = new Set([1, 2, 3, 4, 5, 6]);

/** Legacy action rows: ≤ 5 rows, each ≤ 5 buttons or 1 select; custom_id 1–100 and unique; label ≤ 80. */
export function checkComponents(errors: FormErrors, components: unknown, v2: boolean): void {
  if (components === undefined || components === null) return;
  if (!Array.isArray(components)) return errors.add(['components'], 'BASE_TYPE_ARRAY', 'Must be an array.');
  if (!v2 && components.length > 5) errors.add(['components'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 0 and 5 in length.');
  const ids = new Set<string>();
  components.forEach((row: Json, r) => {
    if (row?.type !== 1) {
      if (!v2) errors.add(['components', r, 'type'], 'COMPONENT_LAYOUT_INVALID', 'Top-level components must be action rows.');
      return;
    }
    const children = Array.isArray(row.components) ? (row.components as Json[]) : [];
    if (children.length < 1 || children.length > 5) errors.add(['components', r, 'components'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 5 in length.');
    children.forEach((c, i) => {
      const path = ['components', r, 'components', i];
      if (c.type !== 2) return;
      if (!BUTTON_STYLES.has(Number(c.style))) errors.add([...path, 'style'], 'BASE_TYPE_CHOICES', 'Value must be one of {1, 2, 3, 4, 5, 6}.');
      maxLen(errors, [...path, 'label'], c.label, 80);
      if (c.style === 5) {
        if (!str(c.url)) errors.add([...path, 'url'], 'BASE_TYPE_REQUIRED', 'This field is required');
        maxLen(errors, [...path, 'url'], c.url, 512);
        if (c.custom_id !== undefined) errors.add([...path, 'custom_id'], 'COMPONENT_CUSTOM_ID_NOT_ALLOWED', 'Link buttons cannot have a custom_id.');
        return;
      }
      const id = str(c.custom_id);
      if (!id) return errors.add([...path, 'custom_id'], 'BASE_TYPE_REQUIRED', 'This field is required');
      maxLen(errors, [...path, 'custom_id'], id, 100, 1);
      if (ids.has(id)) errors.add([...path, 'custom_id'], 'COMPONENT_CUSTOM_ID_DUPLICATED', 'Component custom id cannot be duplicated');
      ids.add(id);
    });
  });
}

export function checkEmbeds(errors: FormErrors, embeds: unknown): void {
  if (embeds === undefined || embeds === null) return;
  if (!Array.isArray(embeds)) return errors.add(['embeds'], 'BASE_TYPE_ARRAY', 'Must be an array.');
  if (embeds.length > 10) errors.add(['embeds'], 'BASE_TYPE_MAX_LENGTH', 'Must be 10 or fewer in length.');
  let total = 0;
  embeds.forEach((e: Json, i) => {
    maxLen(errors, ['embeds', i, 'title'], e.title, 256);
    maxLen(errors, ['embeds', i, 'description'], e.description, 4096);
    const fields = Array.isArray(e.fields) ? (e.fields as Json[]) : [];
    if (fields.length > 25) errors.add(['embeds', i, 'fields'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    fields.forEach((f, j) => {
      maxLen(errors, ['embeds', i, 'fields', j, 'name'], f.name, 256);
      maxLen(errors, ['embeds', i, 'fields', j, 'value'], f.value, 1024);
      total += (str(f.name)?.length ?? 0) + (str(f.value)?.length ?? 0);
    });
    const footer = e.footer as Json | undefined;
    maxLen(errors, ['embeds', i, 'footer', 'text'], footer?.text, 2048);
    total += (str(e.title)?.length ?? 0) + (str(e.description)?.length ?? 0) + (str(footer?.text)?.length ?? 0);
  });
  if (total > 6000) errors.add(['embeds'], 'MAX_EMBED_SIZE_EXCEEDED', 'Embed size exceeds maximum size of 6000');
}

/** A message body for create or edit; `creating` also requires something to show. Null when it is fine. */
export function checkMessage(body: Json, opts: { creating: boolean; files: number }): Json | null {
  const errors = new FormErrors();
  const flags = Number(body.flags ?? 0);
  const v2 = (flags & (1 << 15)) !== 0;
  maxLen(errors, ['content'], body.content, 2000);
  if (v2 && (str(body.content) || (Array.isArray(body.embeds) && body.embeds.length))) {
    errors.add(['content'], 'MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2', 'The \'content\' and \'embeds\' fields cannot be used when using MessageFlags.IS_COMPONENTS_V2');
  }
  checkEmbeds(errors, body.embeds);
  checkComponents(errors, body.components, v2);
  if (typeof body.nonce === 'string') maxLen(errors, ['nonce'], body.nonce, 25);
  if (!errors.empty) return errors.body();
  if (opts.creating) {
    const hasContent = !!str(body.content) || (Array.isArray(body.embeds) && body.embeds.length > 0)
      || (Array.isArray(body.components) && body.components.length > 0) || opts.files > 0 || Array.isArray(body.sticker_ids) || !!body.poll;
    if (!hasContent) return { code: 50006, message: 'Cannot send an empty message' };
  }
  return null;
}

/** A modal (callback type 9): custom_id 1–100, title ≤ 45, 1–5 top-level components, text inputs ≤ 4000. */
export function checkModal(data: Json | undefined): FormErrors {
  const errors = new FormErrors();
  if (!data) {
    errors.add(['data'], 'BASE_TYPE_REQUIRED', 'This field is required');
    return errors;
  }
  maxLen(errors, ['data', 'custom_id'], data.custom_id, 100, 1);
  if (!str(data.custom_id)) errors.add(['data', 'custom_id'], 'BASE_TYPE_REQUIRED', 'This field is required');
  maxLen(errors, ['data', 'title'], data.title, 45, 1);
  const components = Array.isArray(data.components) ? (data.components as Json[]) : [];
  if (components.length < 1 || components.length > 5) errors.add(['data', 'components'], 'BASE_TYPE_BAD_LENGTH', 'Must be between 1 and 5 in length.');
  components.forEach((c, i) => {
    const inputs = c.type === 18 ? [c.component as Json] : c.type === 1 ? ((c.components as Json[]) ?? []) : [];
    if (c.type === 18) maxLen(errors, ['data', 'components', i, 'label'], c.label, 45, 1);
    inputs.forEach((input, j) => {
      if (input?.type !== 4) return;
      const path = ['data', 'components', i, 'component', j];
      maxLen(errors, [...path, 'custom_id'], input.custom_id, 100, 1);
      maxLen(errors, [...path, 'value'], input.value, 4000);
      if (typeof input.max_length === 'number' && typeof input.value === 'string' && input.value.length > input.max_length) {
        errors.add([...path, 'value'], 'BASE_TYPE_MAX_LENGTH', `Must be ${input.max_length} or fewer in length.`);
      }
    });
  });
  return errors;
}

const COMMAND_NAME = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u;

/** An application command: names, descriptions, ≤ 25 options and choices, ≤ 8000 characters in all. */
export function checkCommand(body: Json): FormErrors {
  const errors = new FormErrors();
  const type = Number(body.type ?? 1);
  const name = str(body.name) ?? '';
  if (!COMMAND_NAME.test(name) || (type === 1 && name !== name.toLowerCase())) errors.add(['name'], 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
  if (type === 1) maxLen(errors, ['description'], body.description ?? '', 100, 1);
  let chars = name.length + (str(body.description)?.length ?? 0);
  const walk = (options: unknown, path: (string | number)[], depth: number) => {
    if (!Array.isArray(options)) return;
    if (options.length > 25) errors.add(path, 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
    let seenOptional = false;
    options.forEach((o: Json, i) => {
      const p = [...path, i];
      if (!COMMAND_NAME.test(str(o.name) ?? '')) errors.add([...p, 'name'], 'APPLICATION_COMMAND_INVALID_NAME', 'Command name is invalid');
      maxLen(errors, [...p, 'description'], o.description ?? '', 100, 1);
      chars += (str(o.name)?.length ?? 0) + (str(o.description)?.length ?? 0);
      const choices = Array.isArray(o.choices) ? (o.choices as Json[]) : [];
      if (choices.length > 25) errors.add([...p, 'choices'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
      if (choices.length && o.autocomplete) errors.add([...p, 'autocomplete'], 'APPLICATION_COMMAND_OPTION_CHOICES_AND_AUTOCOMPLETE', 'Autocomplete cannot be set with choices');
      for (const c of choices) chars += (str(c.name)?.length ?? 0) + String(c.value ?? '').length;
      if (o.type === 1 || o.type === 2) {
        if (depth >= 2) errors.add(p, 'APPLICATION_COMMAND_OPTIONS_TOO_DEEP', 'Sub-command groups may only contain sub-commands');
        walk(o.options, [...p, 'options'], depth + 1);
        return;
      }
      if (o.required && seenOptional) errors.add([...p, 'required'], 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID', 'Required options must be placed before non-required options');
      if (!o.required) seenOptional = true;
    });
  };
  walk(body.options, ['options'], 0);
  if (chars > 8000) errors.add([], 'APPLICATION_COMMAND_TOO_LARGE', 'Command exceeds maximum size (8000)');
  return errors;
}

/** An autocomplete result (callback type 8): `choices` 0–25, each a name of 1–100 and a value (strings ≤ 100). */
export function checkAutocomplete(data: Json | undefined): FormErrors {
  const errors = new FormErrors();
  const choices = data?.choices;
  if (!Array.isArray(choices)) {
    errors.add(['data', 'choices'], 'BASE_TYPE_REQUIRED', 'This field is required');
    return errors;
  }
  if (choices.length > 25) errors.add(['data', 'choices'], 'BASE_TYPE_MAX_LENGTH', 'Must be 25 or fewer in length.');
  choices.forEach((c: Json, i) => {
    const p = ['data', 'choices', i];
    if (!str(c?.name)) errors.add([...p, 'name'], 'BASE_TYPE_REQUIRED', 'This field is required');
    maxLen(errors, [...p, 'name'], c?.name, 100, 1);
    if (typeof c?.value === 'string') maxLen(errors, [...p, 'value'], c.value, 100);
    else if (typeof c?.value !== 'number') errors.add([...p, 'value'], 'BASE_TYPE_REQUIRED', 'This field is required');
  });
  return errors;
}
