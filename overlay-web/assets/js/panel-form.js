// The control panel's "new drop" form: inventory rows, cue rows, a live preview of the
// script's timeline, and the server's validation messages placed beside the field they
// name (`field` in the API's error, e.g. `script.cues[2].sku`).
import { $, el } from './views.js';

export const CUE_TYPES = ['intro', 'reveal', 'flash_coupon', 'scarcity', 'quest', 'cta', 'soft_close', 'close'];

/** The cue fields the form offers for each type (beyond at_s, type and title). */
const CUE_FIELDS = {
  intro: ['body'], reveal: ['sku', 'image_url'], flash_coupon: ['code', 'percent_off', 'ttl_s', 'unique', 'limit'],
  scarcity: ['sku', 'body'], quest: ['quest', 'ttl_s', 'points', 'body'], cta: ['body'], soft_close: ['body'], close: [],
};
const FIELD_UI = {
  sku: { label: 'SKU', attrs: { list: 'sku-list', placeholder: 'which item' } },
  image_url: { label: 'Image URL', attrs: { placeholder: 'https://… (optional)' } },
  code: { label: 'Code', attrs: { placeholder: 'KILN10' } },
  percent_off: { label: '% off', attrs: { type: 'number', min: '1', max: '100' } },
  ttl_s: { label: 'Lasts (s)', attrs: { type: 'number', min: '1' } },
  unique: { label: 'Personal codes', attrs: { type: 'checkbox' } },
  limit: { label: 'How many', attrs: { type: 'number', min: '1' } },
  points: { label: 'Points', attrs: { type: 'number', min: '1' } },
  quest: { label: 'Quest kind', attrs: { placeholder: 'be_there, claim_within or redeem_within' } },
  body: { label: 'Text', attrs: { placeholder: 'optional' } },
};
const NUMBERS = new Set(['percent_off', 'ttl_s', 'limit', 'points']);

/** What a new drop's form starts with (recipes, in the Recipes view, are the reusable drops). */
export const EXAMPLE = {
  title: 'Speckled mugs, batch 12 — live from the studio', kind: 'drop', currency: 'EUR', hold_s: 900,
  inventory: [
    { sku: 'mug-speckled-350', name: 'Speckled mug, 350 ml', price_cents: 3400, stock: 40, per_viewer_limit: 1 },
    { sku: 'mug-speckled-500', name: 'Speckled mug, 500 ml', price_cents: 3900, stock: 12, per_viewer_limit: 1 },
  ],
  script: { duration_s: 600, cues: [
    { at_s: 0, type: 'intro', title: 'Welcome to the studio — kiln opened this morning' },
    { at_s: 45, type: 'cta', title: 'Tap Claim the moment the mugs appear' },
    { at_s: 90, type: 'reveal', sku: 'mug-speckled-350', title: 'Batch 12: the 350 ml speckled mug' },
    { at_s: 180, type: 'reveal', sku: 'mug-speckled-500', title: 'Only twelve of the big ones' },
    { at_s: 300, type: 'flash_coupon', code: 'KILN10', percent_off: 10, ttl_s: 120, title: '10% off the next two minutes' },
    { at_s: 420, type: 'scarcity', title: 'Going fast — check the stock bar' },
    { at_s: 540, type: 'soft_close', title: 'Last call: one minute left' },
    { at_s: 600, type: 'close' },
  ] },
};


let serial = 0;

function field(name, label, input, cls = '') {
  input.dataset.field = name; // the full path is set by reindex()
  const id = `in-${name}-${++serial}`;
  input.id = id;
  return el('div', { class: `field ${cls}` }, el('label', { for: id }, label), input, el('span', { class: 'field-error', role: 'alert' }));
}

function input(attrs, value) {
  const node = el('input', attrs);
  if (attrs.type === 'checkbox') node.checked = !!value;
  else if (value !== undefined && value !== null) node.value = value;
  return node;
}

function removeButton(what, onclick) {
  return el('button', { type: 'button', class: 'remove', 'aria-label': `Remove ${what}`, title: `Remove ${what}`, onclick }, '×');
}

function itemRow(item = {}) {
  const row = el('div', { class: 'row-item inv-grid' },
    field('sku', 'SKU', input({ name: 'sku', required: true, placeholder: 'mug-350' }, item.sku)),
    field('name', 'Name', input({ name: 'name', required: true, placeholder: 'Speckled mug, 350 ml' }, item.name)),
    field('price_cents', 'Price', input({ name: 'price', type: 'number', min: '0', step: '0.01', placeholder: '34.00' },
      item.price_cents !== undefined ? (item.price_cents / 100).toFixed(2) : '')),
    field('stock', 'Stock', input({ name: 'stock', type: 'number', min: '0', placeholder: '40' }, item.stock)),
    field('per_viewer_limit', 'Per viewer', input({ name: 'per_viewer_limit', type: 'number', min: '1' }, item.per_viewer_limit ?? 1)),
    field('image_url', 'Image URL', input({ name: 'image_url', placeholder: 'optional' }, item.image_url)),
    removeButton('item', () => { row.remove(); reindex(); }));
  return row;
}

function cueRow(cue = { at_s: 0, type: 'intro' }) {
  const type = el('select', { name: 'type' }, ...CUE_TYPES.map((t) => el('option', { value: t, selected: t === cue.type }, t)));
  const extras = Object.entries(FIELD_UI).map(([name, ui]) =>
    field(name, ui.label, input({ name, ...ui.attrs }, cue[name]), `x-${name}${ui.attrs.type === 'checkbox' ? ' check' : ''}`));
  const row = el('div', { class: 'row-item cue-row', 'data-type': cue.type },
    field('at_s', 'At (s)', input({ name: 'at_s', type: 'number', min: '0' }, cue.at_s), 'narrow'),
    field('type', 'Type', type),
    field('title', 'Title', input({ name: 'title', placeholder: 'what the viewers read' }, cue.title), 'grow'),
    ...extras,
    el('span', { class: 'field-error row-error', role: 'alert' }),
    removeButton('cue', () => { row.remove(); reindex(); }));
  type.addEventListener('change', () => { row.dataset.type = type.value; preview(); });
  return row;
}

/** Gives every input its JSON path, so a server error can find it. */
function reindex() {
  [...$('inv-rows').children].forEach((row, i) => {
    row.dataset.field = `inventory[${i}]`;
    for (const inp of row.querySelectorAll('input, select')) inp.dataset.field = `inventory[${i}].${inp.name === 'price' ? 'price_cents' : inp.name}`;
  });
  [...$('cue-rows').children].forEach((row, i) => {
    row.dataset.field = `script.cues[${i}]`;
    for (const inp of row.querySelectorAll('input, select')) inp.dataset.field = `script.cues[${i}].${inp.name}`;
  });
  const skus = [...$('inv-rows').querySelectorAll('input[name=sku]')].map((i) => i.value.trim()).filter(Boolean);
  $('sku-list').replaceChildren(...skus.map((s) => el('option', { value: s })));
  preview();
}

/** The create body from the form. */
export function readForm() {
  const num = (v) => (v === '' ? undefined : Number(v));
  const body = {
    title: $('f-title').value.trim(), kind: $('f-kind').value, currency: $('f-currency').value.trim().toUpperCase(),
    hold_s: num($('f-hold').value),
    inventory: [...$('inv-rows').children].map((row) => {
      const v = (n) => row.querySelector(`[name=${n}]`).value.trim();
      const item = { sku: v('sku'), name: v('name'), price_cents: Math.round(Number(v('price') || 0) * 100),
        stock: num(v('stock')) ?? 0, per_viewer_limit: num(v('per_viewer_limit')) ?? 1 };
      if (v('image_url')) item.image_url = v('image_url');
      return item;
    }),
    script: { duration_s: num($('f-duration').value), cues: [...$('cue-rows').children].map(readCue) },
  };
  if ($('f-id').value.trim()) body.id = $('f-id').value.trim();
  return body;
}

function readCue(row) {
  const type = row.querySelector('[name=type]').value;
  const cue = { at_s: Number(row.querySelector('[name=at_s]').value || 0), type };
  const title = row.querySelector('[name=title]').value.trim();
  if (title) cue.title = title;
  for (const name of CUE_FIELDS[type]) {
    const inp = row.querySelector(`[name=${name}]`);
    if (inp.type === 'checkbox') {
      if (inp.checked) cue[name] = true;
    } else if (inp.value.trim() !== '') {
      cue[name] = NUMBERS.has(name) ? Number(inp.value) : inp.value.trim();
    }
  }
  if (type === 'flash_coupon' && cue.unique) delete cue.code;
  if (type === 'flash_coupon' && !cue.unique) delete cue.limit;
  return cue;
}

/** Fills the form from a create body (the example, or pasted JSON). */
export function fillForm(body) {
  $('f-title').value = body.title || '';
  $('f-id').value = body.id || '';
  $('f-kind').value = body.kind || 'drop';
  $('f-currency').value = body.currency || 'EUR';
  $('f-hold').value = body.hold_s ?? 900;
  $('f-duration').value = body.script?.duration_s ?? 600;
  $('inv-rows').replaceChildren(...(body.inventory || []).map(itemRow));
  $('cue-rows').replaceChildren(...(body.script?.cues || []).map(cueRow));
  reindex();
  clearErrors();
}

export function clearErrors() {
  for (const n of document.querySelectorAll('#create .invalid')) n.classList.remove('invalid');
  for (const n of document.querySelectorAll('#create .field-error, #create-error')) n.textContent = '';
}

/**
 * Shows an API error beside the field its `field` path names, or the closest enclosing
 * row or section, in `root`. Returns the element it marked.
 */
export function showFieldError(root, path, message) {
  let target = null;
  let p = path || '';
  while (p && !target) {
    target = root.querySelector(`[data-field="${CSS.escape(p)}"]`);
    if (!target) {
      const up = p.replace(/(\.[^.[\]]*|\[\d+\])$/, '');
      p = up === p ? '' : up; // `hold_s` has no parent: stop
    }
  }
  const text = path && message.startsWith(`${path}: `) ? message.slice(path.length + 2) : message;
  if (!target) return null;
  target.classList.add('invalid');
  const holder = target.closest('.field') || target;
  const slot = holder.querySelector(':scope > .field-error') || holder.querySelector('.field-error');
  if (slot) slot.textContent = p === path ? text : `${path.slice(p.length).replace(/^\./, '')}: ${text}`;
  if (target.matches('input, select, textarea')) target.focus();
  else target.scrollIntoView({ block: 'center' });
  return target;
}

/** The script preview bar above the cue rows. */
export function preview() {
  const body = readForm();
  drawTimeline($('preview-timeline'), body.script.cues, body.script.duration_s || 1, { elapsed: null });
}

/** Draws a script as a bar with its cues at their offsets. */
export function drawTimeline(node, cues, duration, { elapsed = null, fired = new Set() } = {}) {
  const pct = (s) => `${Math.max(0, Math.min(100, (100 * s) / Math.max(1, duration)))}%`;
  const marks = cues.map((c, i) => el('div', {
    class: `mark t-${c.type}${fired.has(i) ? ' fired' : ''}${i % 2 ? ' low' : ''}`, style: { left: pct(c.at_s) },
    title: `${c.at_s} s · ${c.type}${c.title ? ` — ${c.title}` : ''}`, 'data-index': i,
  }, el('span', { class: 'mark-dot' }), el('span', { class: 'mark-label' }, `${c.type.replace('_', ' ')}`)));
  const scale = [0, 0.25, 0.5, 0.75, 1].map((f) => el('span', { class: 'scale', style: { left: `${f * 100}%` } }, fmt(duration * f)));
  const children = [el('div', { class: 'track' }, el('div', { class: 'done', style: { width: elapsed === null ? '0' : pct(elapsed) } })), ...scale, ...marks];
  if (elapsed !== null) children.push(el('div', { class: 'playhead', style: { left: pct(elapsed) } }));
  node.replaceChildren(...children);
}

export function fmt(s) {
  s = Math.max(0, Math.floor(s));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

export function setupForm() {
  document.body.append(el('datalist', { id: 'sku-list' }));
  $('add-item').addEventListener('click', () => {
    $('inv-rows').append(itemRow({ per_viewer_limit: 1 }));
    reindex();
    $('inv-rows').lastChild.querySelector('input').focus();
  });
  $('add-cue').addEventListener('click', () => {
    const last = [...$('cue-rows').children].pop();
    const at = last ? Number(last.querySelector('[name=at_s]').value || 0) + 30 : 0;
    $('cue-rows').append(cueRow({ at_s: at, type: 'cta' }));
    reindex();
    $('cue-rows').lastChild.querySelector('input').focus();
  });
  $('create-form').addEventListener('input', (ev) => {
    if (ev.target.name === 'sku') reindex();
    else if (ev.target.closest('#cue-rows') || ev.target.id === 'f-duration') preview();
    const f = ev.target.closest('.field');
    if (f && ev.target.classList.contains('invalid')) {
      ev.target.classList.remove('invalid');
      f.querySelector('.field-error').textContent = '';
    }
  });
}
