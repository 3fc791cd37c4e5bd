// The public launch calendar (/calendar): the upcoming drops of GET /api/v1/calendar, in the
// viewer's time zone, each linking to its page (the waitlist before the start, the live
// overlay during it), and a webcal:// link to subscribe to /calendar.ics.
// With `?coop=<id>`: a co-op's shared calendar (GET /api/v1/coops/{id}/calendar), each drop
// that collides with another of the co-op's marked, and the co-op's feed
// (/coops/{id}/calendar.ics) to subscribe to.

const $ = (sel) => document.querySelector(sel);

/** The co-op of `?coop=<id>`: the id; `null` without one (the hub's calendar); `undefined`
 *  when it is not a co-op id (1-64 of a-z, 0-9, -). */
export function coopOf(search) {
  const id = new URLSearchParams(search).get('coop');
  return id !== null && /^[a-z0-9-]{1,64}$/.test(id) ? id : (id === null ? null : undefined);
}

/** The feed's path: the hub's, or a co-op's. */
export function feedPath(coop) {
  return coop ? `/coops/${coop}/calendar.ics` : '/calendar.ics';
}

/** The `webcal://` address of the feed on this hub (a calendar app subscribes to it). */
export function webcalUrl(loc, coop = null) {
  return `webcal://${loc.host}${feedPath(coop)}`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

/** A co-op drop's warning: the drops of the co-op live at the same time (none: nothing). */
function overlapNote(d, drops) {
  const ids = d.overlaps || [];
  if (!ids.length) return [];
  const names = ids.map((id) => drops.find((o) => o.id === id)?.title || id);
  return [el('div', { class: 'clash', role: 'note' }, `Overlaps ${names.join(', ')}`)];
}

function render(drops) {
  const list = $('#drops');
  list.replaceChildren();
  const day = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric', month: 'short' });
  const time = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
  const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'short' });
  for (const d of drops) {
    const starts = new Date(d.starts_ms);
    const live = d.state === 'live' || d.state === 'paused';
    const minutes = Math.round(d.duration_s / 60);
    const title = el('h2', {}, d.title);
    if (live) title.append(el('span', { class: 'badge' }, 'live now'));
    const clash = (d.overlaps || []).length > 0;
    const item = el('li', { class: `drop${live ? ' live' : ''}${clash ? ' overlap' : ''}`, 'data-id': d.id },
      el('time', { class: 'when', datetime: d.starts_at, title: full.format(starts) },
        el('span', { class: 'day' }, day.format(starts)),
        el('span', { class: 'time' }, time.format(starts))),
      el('div', { class: 'what' }, title,
        el('div', { class: 'meta' }, `${d.kind} · ${minutes} min · by ${d.maker}`),
        ...overlapNote(d, drops)),
      el('a', { class: 'go', href: d.url }, live ? 'Watch live' : 'Join the waitlist'));
    list.append(item);
  }
}

async function load(coop) {
  const status = $('#status');
  try {
    if (coop === undefined) throw new Error('the co-op id is not valid');
    const url = coop ? `/api/v1/coops/${coop}/calendar` : '/api/v1/calendar';
    const resp = await fetch(url, { headers: { accept: 'application/json' } });
    if (resp.status === 404 && coop) throw new Error(`there is no co-op ${coop}`);
    if (!resp.ok) throw new Error(`the hub answered ${resp.status}`);
    const body = await resp.json();
    const { drops } = body;
    if (coop) {
      $('#coop').textContent = body.name;
      $('#coop').hidden = false;
      document.title = `${body.name} · dropwire launch calendar`;
    }
    render(drops);
    status.textContent = drops.length ? '' : 'No drops announced yet: subscribe to hear of the next one.';
    document.body.dataset.loaded = 'yes';
  } catch (e) {
    status.textContent = `Cannot load the calendar: ${e.message}`;
    status.classList.add('error');
  }
}

if (typeof document !== 'undefined') {
  const coop = coopOf(window.location.search);
  $('#subscribe').href = webcalUrl(window.location, coop);
  $('#download').href = feedPath(coop);
  if (coop) $('#download').setAttribute('download', `${coop}-calendar.ics`);
  $('#zone').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  load(coop);
  setInterval(() => load(coop), 60_000);
}
