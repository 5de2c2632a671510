// Small DOM helpers shared by the pages.
import { t, type MessageKey } from "./i18n";

export interface FieldError {
  path: string;
  message: string;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A select named `name` with `[value, label]` options, `value` chosen. */
export function select(name: string, options: [string, string][], value: string, attrs: Record<string, string> = {}): HTMLSelectElement {
  const s = el("select", { name, ...attrs });
  for (const [v, label] of options) s.append(el("option", { value: v }, label));
  s.value = value;
  return s;
}

/** Inputs bound to the fields of a form object (read through `form`, which may be replaced):
 * each carries its request-body path (`data-path`, for [`markInvalid`]) and the test id
 * `${prefix}-${key}`; a text box keeps what is typed, a select also calls `changed`. */
export function binder<F extends object>(form: () => F, prefix: string, changed: () => void) {
  const fields = () => form() as unknown as Record<string, string>;
  return {
    text(key: keyof F & string, path: string, attrs: Record<string, string> = {}): HTMLInputElement {
      const input = el("input", { type: "text", value: String(fields()[key]), "data-path": path, "data-testid": `${prefix}-${key}`, ...attrs });
      input.addEventListener("input", () => (fields()[key] = input.value));
      return input;
    },
    choose(key: keyof F & string, path: string, options: [string, string][]): HTMLSelectElement {
      const s = select(key, options, String(fields()[key]), { "data-path": path, "data-testid": `${prefix}-${key}` });
      s.addEventListener("change", () => {
        fields()[key] = s.value;
        changed();
      });
      return s;
    },
  };
}

export function field(labelKey: MessageKey, input: HTMLElement): HTMLLabelElement {
  const label = el("label", { class: "field" });
  label.append(el("span", {}, t(labelKey)), input);
  return label;
}

/** One error as shown: its field path, then what is wrong. */
export function errorText(e: FieldError): string {
  return e.path ? `${e.path}: ${e.message}` : e.message;
}

/** The server's field errors as a list (role=alert), or nothing. */
export function errorList(errors: FieldError[], testid: string): HTMLElement[] {
  if (!errors.length) return [];
  const list = el("ul", { class: "error", role: "alert", "data-testid": testid });
  for (const e of errors) list.append(el("li", {}, errorText(e)));
  return [list];
}

/** Marks the inputs whose `data-path` an error names (or contains, e.g. `honours[1].name`
 * within `honours[1]`) as invalid, so the failing field is visible beside the list. */
export function markInvalid(form: HTMLElement, errors: FieldError[]): void {
  for (const input of form.querySelectorAll<HTMLElement>("[data-path]")) {
    const own = input.dataset.path ?? "";
    const hit = errors.some((e) => e.path === own || e.path.startsWith(`${own}.`) || e.path.startsWith(`${own}[`));
    if (hit) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }
}

/** The field errors of a failed API answer. */
export async function errorsOf(resp: Response): Promise<FieldError[]> {
  const body = await resp.json().catch(() => null);
  return body?.error?.fields ?? [{ path: "", message: body?.error?.message ?? `HTTP ${resp.status}` }];
}
