import type { NodeSpec } from './nodes.ts';

/**
 * The fake's `validate_prompt`, after execution.py: an unknown or missing class_type fails the whole
 * prompt with `{type: "invalid_prompt"}`; then each output node's inputs are checked recursively, and
 * failures come back as `prompt_outputs_failed_validation` with per-node `node_errors`.
 */
export interface ValidationError {
  type: string;
  message: string;
  details: string;
  extra_info: Record<string, unknown>;
}

export type Graph = Record<string, { class_type?: string; inputs?: Record<string, unknown> }>;

export type Validation =
  | { ok: true; outputs: string[] }
  | { ok: false; error: ValidationError; node_errors: Record<string, { errors: ValidationError[]; dependent_outputs: string[]; class_type: string }> };

const fail = (type: string, message: string, details = '', extra_info: Record<string, unknown> = {}): ValidationError => ({ type, message, details, extra_info });

export function validatePrompt(prompt: Graph, info: Record<string, NodeSpec>): Validation {
  const outputs: string[] = [];
  for (const [id, node] of Object.entries(prompt)) {
    if (!node || typeof node !== 'object' || !('class_type' in node)) {
      return { ok: false, error: fail('invalid_prompt', 'Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`), node_errors: {} };
    }
    const spec = info[String(node.class_type)];
    if (!spec) {
      return { ok: false, error: fail('invalid_prompt', `Cannot execute because node ${String(node.class_type)} does not exist.`, `Node ID '#${id}'`), node_errors: {} };
    }
    if (spec.output_node) outputs.push(id);
  }
  if (outputs.length === 0) return { ok: false, error: fail('prompt_no_outputs', 'Prompt has no outputs'), node_errors: {} };

  const checked = new Map<string, ValidationError[]>();
  const check = (id: string): boolean => {
    if (checked.has(id)) return checked.get(id)!.length === 0;
    checked.set(id, []);
    const node = prompt[id]!;
    const spec = info[String(node.class_type)]!;
    const inputs = node.inputs ?? {};
    const errors: ValidationError[] = [];
    let upstreamOk = true;
    const specs: [string, unknown[], boolean][] = [
      ...Object.entries(spec.input.required ?? {}).map(([k, v]) => [k, v, true] as [string, unknown[], boolean]),
      ...Object.entries(spec.input.optional ?? {}).map(([k, v]) => [k, v, false] as [string, unknown[], boolean]),
    ];
    for (const [name, inputSpec, required] of specs) {
      if (!(name in inputs)) {
        if (required) errors.push(fail('required_input_missing', 'Required input is missing', name, { input_name: name }));
        continue;
      }
      const value = inputs[name];
      const [type, options] = inputSpec as [unknown, Record<string, unknown> | undefined];
      if (Array.isArray(value)) {
        const [from, slot] = value as [string, number];
        if (value.length !== 2 || !prompt[from]) {
          errors.push(fail('bad_linked_input', 'Bad linked input, must be a length-2 list of [node_id, slot_index]', name, { input_name: name, received_value: value }));
          continue;
        }
        const fromSpec = info[String(prompt[from]!.class_type)];
        const received = fromSpec?.output[slot];
        if (typeof type === 'string' && received !== type) {
          errors.push(fail('return_type_mismatch', 'Return type mismatch between linked nodes', `${name}, ${received} != ${type}`, { input_name: name, received_type: received, linked_node: value }));
          continue;
        }
        if (!check(from)) upstreamOk = false;
        continue;
      }
      const choices = Array.isArray(type) ? type : type === 'COMBO' ? (options?.options as unknown[] | undefined) : undefined;
      if (choices) {
        if (!choices.includes(value)) {
          const custom = String(node.class_type) === 'LoadImage';
          errors.push(custom
            ? fail('custom_validation_failed', 'Custom validation failed for node', `${name} - Invalid image file: ${String(value)}`, { input_name: name })
            : fail('value_not_in_list', 'Value not in list', `${name}: '${String(value)}' not in ${JSON.stringify(choices)}`, { input_name: name, received_value: value }));
        }
        continue;
      }
      if (type === 'INT' || type === 'FLOAT') {
        const n = Number(value);
        if (typeof value === 'boolean' || !Number.isFinite(n) || (type === 'INT' && !Number.isInteger(n))) {
          errors.push(fail('invalid_input_type', `Failed to convert an input value to a ${type} value`, `${name}, ${String(value)}`, { input_name: name, received_value: value }));
          continue;
        }
        const min = options?.min as number | undefined;
        const max = options?.max as number | undefined;
        if (min !== undefined && n < min) errors.push(fail('value_smaller_than_min', `Value ${n} smaller than min of ${min}`, `${name}`, { input_name: name, received_value: value }));
        if (max !== undefined && n > max) errors.push(fail('value_bigger_than_max', `Value ${n} bigger than max of ${max}`, `${name}`, { input_name: name, received_value: value }));
      }
      if (type === 'STRING' && typeof value !== 'string') {
        errors.push(fail('invalid_input_type', 'Failed to convert an input value to a STRING value', `${name}, ${String(value)}`, { input_name: name }));
      }
    }
    checked.set(id, errors);
    return errors.length === 0 && upstreamOk;
  };

  const good: string[] = [];
  const node_errors: Record<string, { errors: ValidationError[]; dependent_outputs: string[]; class_type: string }> = {};
  for (const out of outputs) {
    if (check(out)) {
      good.push(out);
      continue;
    }
    for (const [id, errors] of checked) {
      if (errors.length === 0) continue;
      node_errors[id] ??= { errors, dependent_outputs: [], class_type: String(prompt[id]!.class_type) };
      if (!node_errors[id]!.dependent_outputs.includes(out)) node_errors[id]!.dependent_outputs.push(out);
    }
  }
  if (good.length === 0) {
    const details = Object.values(node_errors).flatMap((n) => n.errors.map((e) => `${e.message}: ${e.details}`)).join('\n');
    return { ok: false, error: fail('prompt_outputs_failed_validation', 'Prompt outputs failed validation', details), node_errors };
  }
  return { ok: true, outputs: good };
}
