/** A few DOM helpers: elements built with `textContent` only (never HTML from data), and focus kept across
 * re-renders. */

type Child = Node | string | number | null | undefined | false;
type Props = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

/**
 * Creates an element. `on*` props are listeners, `false`/`undefined` props are left out, `true` ones are set
 * empty; children that are strings become text nodes.
 * @example
 * h('button', { type: 'button', onclick: () => save() }, 'Save')
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = String(value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === 'number' ? String(child) : child);
  }
  return element;
}

/** The element with this id, checked to be of the expected kind. */
export function byId<T extends HTMLElement>(id: string, kind: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof kind)) throw new Error(`The page has no ${kind.name} #${id}.`);
  return element;
}

/** The one element matching `selector` inside `root`, checked to be of the expected kind. */
export function find<T extends Element>(root: ParentNode, selector: string, kind: new () => T): T {
  const element = root.querySelector(selector);
  if (!(element instanceof kind)) throw new Error(`No ${kind.name} matches ${selector}.`);
  return element;
}

/**
 * Runs `render` (which replaces what is inside `container`) and gives focus back to the element with the same
 * `data-focus-key` as the one that had it, so a keyboard user is not thrown to the top by a refresh.
 */
export function keepFocus(container: HTMLElement, render: () => void): void {
  const active = document.activeElement;
  const key = active instanceof HTMLElement && container.contains(active) ? active.dataset.focusKey : undefined;
  render();
  if (key === undefined) return;
  const again = container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`);
  if (again instanceof HTMLElement) again.focus();
}

/** Shows an outcome in a form's status line. */
export function showResult(element: Element | null, kind: 'ok' | 'error' | 'busy', text: string): void {
  if (!(element instanceof HTMLElement)) return;
  element.dataset.kind = kind;
  element.textContent = text;
}

/** The trimmed value of a named field of a form ('' when absent). */
export function field(form: HTMLFormElement, name: string): string {
  const element = form.elements.namedItem(name);
  return element instanceof HTMLInputElement ||
    element instanceof HTMLSelectElement ||
    element instanceof HTMLTextAreaElement
    ? element.value.trim()
    : '';
}

/** Comma-separated values of a field, empty entries dropped. */
export function listField(form: HTMLFormElement, name: string): string[] {
  return field(form, name)
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
