// The control panel's "Chat" section for the open drop: the recent messages with each
// author's viewer id (delete, mute 5 min, ban, pin a host message), the pinned message
// (unpin), a host message (optionally pinned), the settings (chat on/off, slow mode,
// blocked words) and who is muted or banned (unmute). Reads `GET /api/v1/drops/{id}/chat`
// when the drop opens, after every chat broadcast the panel's socket hears (at most every
// READ_GAP_MS), and after each action; acts through the chat admin routes (docs/api.md).
import { $, el, setText } from './views.js';

const READ_GAP_MS = 300;
const MUTE_S = 300;

let api = null;
let shownFor = null;  // the drop the section shows
let asked = 0;        // bumps per request, so a stale answer (another drop) is dropped
let timer = null;
let dirty = false;    // the settings form has edits not saved yet

const path = (rest = '') => `/drops/${encodeURIComponent(shownFor)}/chat${rest}`;
const errorText = (r) => r.data?.error?.message || `HTTP ${r.status}`;

/** Wires the section's forms; `adminApi` is the panel's admin fetch. */
export function setupChat(adminApi) {
  api = adminApi;
  $('cm-send').addEventListener('submit', sendHost);
  $('cm-settings').addEventListener('submit', saveSettings);
  $('cm-settings').addEventListener('input', () => { dirty = true; setText($('cm-saved'), ''); });
}

/** Shows drop `id`'s chat (null: none). */
export function showChat(id) {
  if (shownFor !== id) {
    shownFor = id;
    dirty = false;
    $('cm-messages').replaceChildren();
    $('cm-mutes').replaceChildren();
    $('cm-pinned').hidden = true;
    setText($('cm-error'), '');
    setText($('cm-state'), '');
  }
  if (id) readChat();
}

/** A broadcast reached the panel's socket: re-read after a chat one. */
export function chatChanged(kind) {
  if (!shownFor || !(kind === 'snapshot' || kind.startsWith('chat'))) return;
  if (timer) return;
  timer = setTimeout(() => { timer = null; readChat(); }, READ_GAP_MS);
}

async function readChat() {
  const id = shownFor;
  const mine = ++asked;
  const r = await api('GET', path());
  if (mine !== asked || id !== shownFor) return;
  if (!r.ok) {
    setText($('cm-error'), `The chat did not load: ${errorText(r)}`);
    return;
  }
  render(r.data);
}

/** Runs one admin action, shows its error, and reads the chat again. */
async function act(method, rest, body) {
  setText($('cm-error'), '');
  const r = await api(method, path(rest), body);
  if (!r.ok) setText($('cm-error'), errorText(r));
  await readChat();
  return r;
}

const untilText = (m) => (m.ban ? 'banned for this drop'
  : m.until_ms ? `muted until ${new Date(m.until_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' })}` : 'muted');

function render(c) {
  setText($('cm-state'), `${c.enabled ? 'on' : 'off'}${c.slow_mode_s ? ` · slow mode ${c.slow_mode_s}s` : ''} · ${c.recent.length} recent`);
  if (!dirty) {
    $('cm-enabled').checked = !!c.enabled;
    $('cm-slow').value = String(c.slow_mode_s || 0);
    $('cm-words').value = (c.blocked_words || []).join('\n');
  }
  const pin = c.pinned;
  $('cm-pinned').hidden = !pin;
  $('cm-pinned').replaceChildren(...(pin ? [
    el('span', { class: 'cm-tag' }, 'Pinned'), el('span', { class: 'cm-author' }, pin.author || 'host'),
    el('span', { class: 'cm-text' }, pin.text),
    el('button', { type: 'button', class: 'small cm-unpin', onclick: () => act('PUT', '/pin', { message_id: null }) }, 'Unpin'),
  ] : []));
  const muted = new Map((c.mutes || []).map((m) => [m.viewer_id, m]));
  $('cm-messages').replaceChildren(...(c.recent.length ? c.recent.map((m) => messageItem(m, muted.get(m.viewer_id), pin)) : [el('li', { class: 'none' }, 'No messages yet.')]));
  $('cm-mutes').replaceChildren(...((c.mutes || []).length ? c.mutes.map((m) => el('li', { class: 'cm-mute', 'data-viewer': m.viewer_id },
    el('code', {}, m.viewer_id), el('span', { class: `cm-until${m.ban ? ' ban' : ''}` }, untilText(m)),
    el('button', { type: 'button', class: 'small cm-unmute', onclick: () => act('DELETE', `/mutes/${encodeURIComponent(m.viewer_id)}`) }, m.ban ? 'Unban' : 'Unmute')))
    : [el('li', { class: 'none' }, 'Nobody.')]));
}

function messageItem(m, mute, pin) {
  const who = m.viewer_id;
  const buttons = [el('button', { type: 'button', class: 'small danger cm-delete', 'aria-label': `Delete the message of ${m.author}`,
    onclick: () => act('DELETE', `/messages/${encodeURIComponent(m.id)}`) }, 'Delete')];
  if (m.host) {
    if (pin?.id !== m.id) buttons.push(el('button', { type: 'button', class: 'small cm-pin', onclick: () => act('PUT', '/pin', { message_id: m.id }) }, 'Pin'));
  } else if (who) {
    buttons.push(
      el('button', { type: 'button', class: 'small cm-mute5', 'aria-label': `Mute ${m.author} for 5 minutes`,
        onclick: () => act('POST', '/mutes', { viewer_id: who, for_s: MUTE_S }) }, 'Mute 5 min'),
      el('button', { type: 'button', class: 'small danger cm-ban', 'aria-label': `Ban ${m.author} from this drop's chat`,
        onclick: () => act('POST', '/mutes', { viewer_id: who, ban: true }) }, 'Ban'));
    if (mute) buttons.push(el('button', { type: 'button', class: 'small cm-unmute', onclick: () => act('DELETE', `/mutes/${encodeURIComponent(who)}`) }, mute.ban ? 'Unban' : 'Unmute'));
  }
  return el('li', { class: `cm-msg${m.host ? ' host' : ''}${mute ? ' muted' : ''}`, 'data-id': m.id, 'data-viewer': who || '' },
    el('span', { class: 'cm-author' }, m.host ? `${m.author || 'host'} (host)` : m.author),
    who ? el('code', { class: 'cm-viewer', title: 'viewer id' }, who) : null,
    mute ? el('span', { class: 'cm-until' }, untilText(mute)) : null,
    el('span', { class: 'cm-text' }, m.text),
    el('span', { class: 'cm-actions' }, ...buttons));
}

async function sendHost(ev) {
  ev.preventDefault();
  const text = $('cm-text').value.trim();
  if (!text) {
    setText($('cm-error'), 'Type the message first.');
    return;
  }
  const r = await act('POST', '', { text, pin: $('cm-pin').checked });
  if (r.ok) {
    $('cm-text').value = '';
    $('cm-pin').checked = false;
  }
}

async function saveSettings(ev) {
  ev.preventDefault();
  const f = ev.target;
  for (const n of f.querySelectorAll('.field-error')) n.textContent = '';
  const words = $('cm-words').value.split('\n').map((w) => w.trim()).filter(Boolean);
  const body = { enabled: $('cm-enabled').checked, slow_mode_s: Number($('cm-slow').value || 0), blocked_words: words };
  setText($('cm-error'), '');
  const r = await api('PUT', path('/settings'), body);
  if (!r.ok) {
    const err = r.data?.error || {};
    const field = err.field && f.querySelector(`[data-field="${err.field.split(/[.[]/)[0]}"] + .field-error`);
    if (field) field.textContent = err.message || errorText(r);
    else setText($('cm-error'), errorText(r));
    return;
  }
  dirty = false;
  setText($('cm-saved'), 'Saved ✓');
  await readChat();
}
