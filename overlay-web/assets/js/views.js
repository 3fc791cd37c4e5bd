// The views the pages share: DOM helpers, the wording a viewer sees (cue kinds, countdown
// labels, stock), and the stock list and leaderboard of the viewer overlay and the OBS
// source. One place for the words, so the pages never disagree; a page may style them
// differently (the OBS source's CSS upper-cases its labels), never word them differently.
// Nothing here touches the page until it is called, so node can import it (unit tests).

/** The element with id `id`. */
export const $ = (id) => document.getElementById(id);

/** What a fired cue is, above its title (the card's and the OBS lower third's kicker). */
export const KIND = {
  intro: 'Live now', reveal: 'Just revealed', flash_coupon: 'Flash coupon', scarcity: 'Going fast',
  quest: 'Quest', cta: 'Heads up', soft_close: 'Last call', close: 'That’s a wrap',
};

/** The countdown's label before the next cue of each type ("Next up in" for the rest). */
export const NEXT = {
  reveal: 'Next reveal in', flash_coupon: 'Flash coupon in', soft_close: 'Last call in', close: 'The drop closes in',
};

/** "07": two digits. */
export const pad2 = (n) => String(n).padStart(2, '0');

/** "1:05" (or "1:02:05") from milliseconds, rounded up so 0:00 means now. */
export function clock(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = pad2(s % 60);
  return h ? `${h}:${pad2(m)}:${ss}` : `${m}:${ss}`;
}

export function money(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: 'currency', currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

/** Scarcity of a SKU: `plenty`, `scarce` (a fifth or at most 3 left) or `sold-out`. */
export function scarcity(left, total) {
  if (left <= 0) return 'sold-out';
  if (left <= Math.max(3, Math.ceil(total * 0.2))) return 'scarce';
  return 'plenty';
}

/** What a stock row says: "sold out", "only 2 left" or "12 left". */
export function stockLabel(left, total) {
  const state = scarcity(left, total);
  return state === 'sold-out' ? 'sold out' : state === 'scarce' ? `only ${left} left` : `${left} left`;
}

/** Creates an element: el('div', {class: 'x', onclick: f}, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'style' && typeof v === 'object') Object.assign(node.style, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Sets text only when it changed (keeps screen readers and layout calm). */
export function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

/** The inventory item of `sku` in drop `d`, or null (a viewer knows only the revealed ones). */
export function itemOf(d, sku) {
  return d.inventory.find((i) => i.sku === sku) || null;
}

/**
 * Updates a keyed list in place (rows: `[key, row]`), so bars animate instead of being
 * rebuilt: `make(row)` creates a node for a new key, `update(node, row)` refreshes one.
 */
export function keyed(list, rows, make, update) {
  const byKey = new Map([...list.children].map((n) => [n.dataset.key, n]));
  const nodes = rows.map(([key, row]) => {
    const node = byKey.get(key) || make(row);
    node.dataset.key = key;
    update(node, row);
    return node;
  });
  nodes.forEach((n, i) => { if (list.children[i] !== n) list.insertBefore(n, list.children[i] || null); });
  while (list.children.length > nodes.length) list.lastChild.remove();
}

/**
 * The stock left per SKU of drop `d` into the list `list` (`<ul>`): a row per SKU with its
 * name, a meter and "n left". A label that changes gets the class `bump` again (a page's CSS
 * may animate it). With no stock yet: one row saying `empty`, or, without `empty`, the list
 * hidden. Returns how many SKUs it shows.
 */
export function renderStock(list, d, { empty = null } = {}) {
  const rows = d.stock.map((s) => [s.sku, { ...s, item: itemOf(d, s.sku) }]);
  if (!rows.length && empty) rows.push(['empty', null]);
  list.hidden = !rows.length;
  keyed(list, rows, (row) => (row ? el('li', { class: 'stock-row' },
    el('span', { class: 'stock-name' }),
    el('span', { class: 'stock-bar', role: 'meter', 'aria-valuemin': '0' }, el('span', { class: 'stock-fill' })),
    el('span', { class: 'stock-left' })) : el('li', { class: 'empty' }, empty)),
  (node, row) => {
    if (!row) return;
    const total = row.item?.stock || Math.max(row.left, 1);
    const name = row.item?.name || row.sku;
    node.className = `stock-row ${scarcity(row.left, total)}`;
    node.dataset.sku = row.sku;
    setText(node.children[0], name);
    const bar = node.children[1];
    bar.setAttribute('aria-valuemax', String(total));
    bar.setAttribute('aria-valuenow', String(row.left));
    bar.setAttribute('aria-label', `${name}: ${row.left} of ${total} left`);
    bar.firstChild.style.width = `${Math.max(0, Math.min(100, (100 * row.left) / total))}%`;
    const left = node.children[2];
    const label = stockLabel(row.left, total);
    if (left.textContent !== label) {
      left.textContent = label;
      left.classList.remove('bump');
      void left.offsetWidth; // restart the animation
      left.classList.add('bump');
    }
  });
  return d.stock.length;
}

/**
 * The leaderboard's first `top` entries into the list `list` (`<ol>`): rank, handle and
 * "n pts"; the entry of handle `mine` is marked. With nobody on it: one row saying `empty`,
 * or, without `empty`, nothing. Returns how many entries it shows.
 */
export function renderBoard(list, leaderboard, { top = 10, mine = null, empty = null } = {}) {
  const shown = leaderboard.slice(0, top);
  const key = JSON.stringify(shown) + (mine ?? '');
  if (list.dataset.key === key) return shown.length;
  list.dataset.key = key;
  const rows = shown.map((e) => el('li', { class: mine && e.handle === mine ? 'mine' : null },
    el('span', { class: 'rank' }, e.rank), el('span', { class: 'who' }, e.handle), el('span', { class: 'pts' }, `${e.points} pts`)));
  list.replaceChildren(...(rows.length || !empty ? rows : [el('li', { class: 'empty' }, empty)]));
  return shown.length;
}

/**
 * Copies `text`; where the clipboard is refused (plain http, no permission) it selects
 * `node` (an input's value, or an element's text) for a copy by hand. The button says
 * which for a moment.
 */
export async function copyText(text, button, node = null) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    if (node && typeof node.select === 'function') {
      node.select();
    } else if (node) {
      const range = document.createRange();
      range.selectNodeContents(node);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
    }
  }
  button.textContent = ok ? 'Copied ✓' : 'Selected';
  setTimeout(() => { button.textContent = 'Copy'; }, 1500);
}
