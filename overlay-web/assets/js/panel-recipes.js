// The control panel's recipe library (`#recipes`): the maker's recipes (reusable drop
// templates with `{{name}}` parameters), a parameter form that starts a drop from one
// (`#recipes&use=ID`), a JSON editor to change one or write a new one (`#recipes&edit=ID`,
// `#recipes&edit=`), Delete; a drop's page saves the drop as a recipe (`saveDropAsRecipe`).
// Speaks the admin routes of docs/api.md ("Recipes").
import { $, el, setText } from './views.js';
import { showFieldError } from './panel-form.js';

let api = null;      // the panel's admin fetch: (method, path, body) → {ok, status, data}
let recipes = [];
let asked = 0;       // bumps per read, so a stale answer is dropped
const armed = new Map(); // recipe id → timer of a first click on Delete

const errorText = (r) => r.data?.error?.message || (r.status ? `HTTP ${r.status}` : 'The server does not answer.');
const path = (id) => `/recipes/${encodeURIComponent(id)}`;
const KINDS = { drop: 'drop', workshop: 'workshop', demo: 'demo' };

/** A new recipe's starting text in the editor. */
const SKELETON = {
  name: 'My recipe',
  description: '',
  params: [{ name: 'item', description: 'The product', default: 'Speckled mug' },
    { name: 'stock', type: 'integer', default: 20 }],
  drop: {
    title: '{{item}} — live', kind: 'drop', currency: 'EUR', hold_s: 900,
    inventory: [{ sku: 'item', name: '{{item}}', price_cents: 3400, stock: '{{stock}}', per_viewer_limit: 1 }],
    script: { duration_s: 600, cues: [
      { at_s: 0, type: 'intro', title: 'Welcome' },
      { at_s: 90, type: 'reveal', sku: 'item', title: '{{item}}' },
      { at_s: 600, type: 'close' },
    ] },
  },
};

function clear(root) {
  for (const n of root.querySelectorAll('.invalid')) n.classList.remove('invalid');
  for (const n of root.querySelectorAll('.field-error, .form-error')) n.textContent = '';
  $('rc-error').textContent = '';
}

/** Wires the view; call once with the panel's `api`. */
export function setupRecipes(apiFn) {
  api = apiFn;
  $('rc-new').addEventListener('click', () => { location.hash = 'recipes&edit='; });
  $('rc-use').addEventListener('submit', startDrop);
  $('rc-edit').addEventListener('submit', save);
  $('rc-use-cancel').addEventListener('click', () => { location.hash = 'recipes'; });
  $('rc-edit-cancel').addEventListener('click', () => { location.hash = 'recipes'; });
  $('from-recipe').addEventListener('click', () => { location.hash = 'recipes'; });
}

/**
 * Shows (`on`) or hides the view; `h` is the hash's parameters: `use=ID` opens the
 * parameter form of a recipe, `edit=ID` (or `edit=` for a new one) the editor.
 */
export async function showRecipes(on, h = new URLSearchParams()) {
  $('recipes').hidden = !on;
  if (on) $('nav-recipes').setAttribute('aria-current', 'page');
  else $('nav-recipes').removeAttribute('aria-current');
  if (!on) return;
  document.title = 'Recipes · dropwire panel';
  await refresh();
  const use = h.get('use');
  const edit = h.get('edit');
  $('rc-use').hidden = true;
  $('rc-edit').hidden = true;
  if (use) openUse(use);
  else if (edit !== null) openEdit(edit);
  render(use || edit);
}

async function refresh() {
  const n = ++asked;
  const r = await api('GET', '/recipes');
  if (n !== asked) return;
  if (!r.ok) {
    recipes = [];
    $('rc-error').textContent = r.status === 503 ? `No recipes here: ${errorText(r)}` : errorText(r);
    render(null);
    return;
  }
  $('rc-error').textContent = '';
  recipes = r.data.recipes;
}

function render(selected) {
  $('rc-list').replaceChildren(...(recipes.length ? recipes.map((rc) => {
    const kind = KINDS[rc.drop?.kind] || 'drop';
    const minutes = Math.round((rc.drop?.script?.duration_s || 0) / 60);
    const del = el('button', { type: 'button', class: 'small ghost', 'data-action': 'delete' }, 'Delete');
    del.addEventListener('click', () => remove(rc.id, del));
    return el('li', { class: 'rc-item', 'data-id': rc.id, 'aria-current': rc.id === selected ? 'true' : null },
      el('span', { class: 'rc-name' }, rc.name),
      el('span', { class: 'rc-meta' }, `${kind} · ${minutes} min · ${rc.params.length} parameter${rc.params.length === 1 ? '' : 's'} · v${rc.version}`),
      el('span', { class: 'rc-actions link' },
        el('a', { class: 'small button-link', href: `#recipes&use=${encodeURIComponent(rc.id)}`, 'data-action': 'use' }, 'Start a drop'),
        el('a', { class: 'small button-link', href: `#recipes&edit=${encodeURIComponent(rc.id)}`, 'data-action': 'edit' }, 'Edit'),
        del));
  }) : [el('li', { class: 'none' }, 'No recipes yet: save a drop as one from its page, or write one.')]));
}

function openUse(id) {
  const rc = recipes.find((r) => r.id === id);
  if (!rc) {
    $('rc-error').textContent = `No recipe ${id}.`;
    return;
  }
  const form = $('rc-use');
  clear(form);
  form.dataset.recipe = id;
  setText($('rc-use-name'), rc.name);
  setText($('rc-use-desc'), rc.description || '');
  $('rc-params').replaceChildren(...rc.params.map((p) => {
    const integer = p.type === 'integer';
    const input = el('input', {
      id: `rc-p-${p.name}`, name: p.name, 'data-field': `params.${p.name}`, 'data-type': integer ? 'integer' : 'string',
      type: integer ? 'number' : 'text', step: integer ? '1' : null, placeholder: p.default === undefined ? 'required' : String(p.default),
    });
    if (p.default !== undefined) input.value = String(p.default);
    return el('div', { class: 'field' },
      el('label', { for: input.id }, p.description || p.name, ' ', el('code', { class: 'opt' }, `{{${p.name}}}`)),
      input, el('span', { class: 'field-error', role: 'alert' }));
  }));
  $('rc-starts').value = '';
  $('rc-drop-id').value = '';
  $('rc-auto').checked = false;
  form.hidden = false;
}

async function startDrop(ev) {
  ev.preventDefault();
  const form = $('rc-use');
  clear(form);
  const params = {};
  for (const input of $('rc-params').querySelectorAll('input')) {
    if (input.value === '') continue; // left out: the default, or "missing parameter"
    params[input.name] = input.dataset.type === 'integer' ? Number(input.value) : input.value;
  }
  const body = { recipe: form.dataset.recipe, params };
  if ($('rc-starts').value) body.starts_at = new Date($('rc-starts').value).toISOString();
  if ($('rc-auto').checked) body.auto_start = true;
  if ($('rc-drop-id').value.trim()) body.id = $('rc-drop-id').value.trim();
  const r = await api('POST', '/drops', body);
  if (!r.ok) {
    const err = r.data?.error || {};
    // A rule of the drop broken by a parameter's value: mark that parameter's input.
    const from = /\(from parameter "([a-z0-9_]+)"\)$/.exec(err.message || '');
    const field = from && !String(err.field).startsWith('params.') ? `params.${from[1]}` : err.field;
    const marked = showFieldError(form, field, err.message || errorText(r));
    $('rc-use-error').textContent = marked ? `Fix the marked field: ${err.message}` : err.message || errorText(r);
    return;
  }
  location.hash = `drop=${encodeURIComponent(r.data.id)}`;
}

function openEdit(id) {
  const form = $('rc-edit');
  clear(form);
  form.dataset.recipe = id;
  const rc = id ? recipes.find((r) => r.id === id) : null;
  if (id && !rc) {
    $('rc-error').textContent = `No recipe ${id}.`;
    return;
  }
  setText($('rc-edit-h'), rc ? `Edit ${rc.name} (version ${rc.version})` : 'New recipe');
  const text = rc ? { name: rc.name, description: rc.description, params: rc.params, drop: rc.drop } : SKELETON;
  $('rc-json').value = JSON.stringify(text, null, 2);
  form.hidden = false;
}

async function save(ev) {
  ev.preventDefault();
  const form = $('rc-edit');
  clear(form);
  let body;
  try {
    body = JSON.parse($('rc-json').value);
  } catch (e) {
    $('rc-json').classList.add('invalid');
    $('rc-json-error').textContent = `The JSON does not parse: ${e.message}`;
    return;
  }
  const id = form.dataset.recipe;
  const r = id ? await api('PATCH', path(id), body) : await api('POST', '/recipes', body);
  if (!r.ok) {
    $('rc-json').classList.add('invalid');
    $('rc-json-error').textContent = errorText(r);
    return;
  }
  location.hash = `recipes&use=${encodeURIComponent(r.data.id)}`;
}

async function remove(id, button) {
  // Deleting is for good (the shipped recipes do not come back): ask for a second click.
  if (!armed.has(id)) {
    button.textContent = 'Click again to delete';
    armed.set(id, setTimeout(() => { armed.delete(id); button.textContent = 'Delete'; }, 4000));
    return;
  }
  clearTimeout(armed.get(id));
  armed.delete(id);
  const r = await api('DELETE', path(id));
  if (!r.ok && r.status !== 404) {
    $('rc-error').textContent = errorText(r);
    return;
  }
  if (location.hash === '#recipes') showRecipes(true);
  else location.hash = 'recipes';
}

/** Saves drop `id` as a recipe and opens it in the editor; returns the API's answer. */
export async function saveDropAsRecipe(id) {
  const r = await api('POST', `/drops/${encodeURIComponent(id)}/recipe`, {});
  if (r.ok) location.hash = `recipes&edit=${encodeURIComponent(r.data.id)}`;
  return r;
}
