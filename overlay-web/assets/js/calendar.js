// The public launch calendar (/calendar): the upcoming drops of GET /api/v1/calendar, in the
// viewer's time zone, each linking to its page (the waitlist before the start, the live
// overlay during it), and a webcal:// link to subscribe to /calendar.ics.

const $ = (sel) => document.querySelector(sel);

/** The `webcal://` address of the feed on this hub (a calendar app subscribes to it). */
export function webcalUrl(loc) {
  return `webcal://${loc.host}/calendar.ics`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
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
    const item = el('li', { class: `drop${live ? ' live' : ''}`, 'data-id': d.id },
      el('time', { class: 'when', datetime: d.starts_at, title: full.format(starts) },
        el('span', { class: 'day' }, day.format(starts)),
        el('span', { class: 'time' }, time.format(starts))),
      el('div', { class: 'what' }, title,
        el('div', { class: 'meta' }, `${d.kind} · ${minutes} min · by ${d.maker}`)),
      el('a', { class: 'go', href: d.url }, live ? 'Watch live' : 'Join the waitlist'));
    list.append(item);
  }
}

async function load() {
  const status = $('#status');
  try {
    const resp = await fetch('/api/v1/calendar', { headers: { accept: 'application/json' } });
    if (!resp.ok) throw new Error(`the hub answered ${resp.status}`);
    const { drops } = await resp.json();
    render(drops);
    status.textContent = drops.length ? '' : 'No drops announced yet: subscribe to hear of the next one.';
    document.body.dataset.loaded = 'yes';
  } catch (e) {
    status.textContent = `Cannot load the calendar: ${e.message}`;
    status.classList.add('error');
  }
}

if (typeof document !== 'undefined') {
  $('#subscribe').href = webcalUrl(window.location);
  $('#zone').textContent = Intl.DateTimeFormat().resolvedOptions().timeZone || 'local';
  load();
  setInterval(load, 60_000);
}
