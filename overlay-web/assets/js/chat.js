// The drop's chat as the pages see it: the state kept from the snapshot's `chat` and the
// `chat`, `chat_delete`, `chat_pin` and `chat_settings` broadcasts (client.js applies them),
// the words for a refused message, and one message's row for the live page and the OBS
// source. Messages are keyed by id, so a broadcast seen again after a resume adds nothing,
// and at most KEEP are kept. Nothing here touches the page until it is called (node's unit
// tests import it).
import { el } from './views.js';

/** Longest message, in Unicode scalar values (the hub's default `chat_max_chars`). */
export const CHAT_MAX = 280;
/** Messages a page keeps (and shows): the newest. */
export const KEEP = 100;

/** Length as the hub counts it: Unicode scalar values, not UTF-16 units. */
export const chatLength = (text) => [...text].length;

/** `text` cut to `max` scalar values (never half a surrogate pair). */
export function clip(text, max = CHAT_MAX) {
  const chars = [...text];
  return chars.length > max ? chars.slice(0, max).join('') : text;
}

/** The chat of a snapshot (absent from an older hub: chat on, nothing said). */
export function chatOf(snapshot) {
  const c = snapshot || {};
  return {
    enabled: c.enabled !== false,
    slow_mode_s: c.slow_mode_s || 0,
    pinned: c.pinned || null,
    recent: dedupe(c.recent || []).slice(-KEEP),
  };
}

function dedupe(messages) {
  const seen = new Set();
  return messages.filter((m) => m && !seen.has(m.id) && seen.add(m.id));
}

/**
 * Applies one chat broadcast to `chat` (from `chatOf`); returns whether it was one.
 * `chat`: new messages after the known ones (an id already there is skipped);
 * `chat_delete`: the ids go (and the pin with them); `chat_pin`; `chat_settings`.
 */
export function applyChat(chat, m) {
  switch (m.type) {
    case 'chat': {
      const known = new Set(chat.recent.map((x) => x.id));
      const fresh = (m.messages || []).filter((x) => !known.has(x.id) && known.add(x.id));
      if (fresh.length) chat.recent = chat.recent.concat(fresh).slice(-KEEP);
      return true;
    }
    case 'chat_delete': {
      const gone = new Set(m.ids || []);
      chat.recent = chat.recent.filter((x) => !gone.has(x.id));
      if (chat.pinned && gone.has(chat.pinned.id)) chat.pinned = null;
      return true;
    }
    case 'chat_pin':
      chat.pinned = m.message || null;
      return true;
    case 'chat_settings':
      chat.enabled = m.enabled !== false;
      chat.slow_mode_s = m.slow_mode_s || 0;
      return true;
    default:
      return false;
  }
}

const secs = (ms) => Math.max(1, Math.ceil((ms || 0) / 1000));

/** What a viewer reads when the hub refuses its message (`r`: the `chat_result`). */
export function chatRefusal(r) {
  const wait = secs(r.retry_after_ms);
  switch (r.reason) {
    case 'unauthorized': return 'Sign in to chat.';
    case 'empty': return 'Type a message first.';
    case 'too_long': return `Too long: ${CHAT_MAX} characters at most.`;
    case 'rate_limited': return `Too fast: wait ${wait}s.`;
    case 'slow_mode': return `slow mode: wait ${wait}s`;
    case 'muted': return r.retry_after_ms ? `You are muted: you can chat again in ${wait}s.` : 'You are muted.';
    case 'banned': return 'You are banned from this chat.';
    case 'blocked_word': return 'Not sent: that message has a word the host blocked.';
    case 'chat_off': return 'Chat is off.';
    case 'unavailable': return 'Not sent: connection hiccup, try again.';
    default: return `Not sent (${r.reason || 'unknown'}).`;
  }
}

/** One message's row: author (a host badge for the maker), text. `tag`: `li` or `div`. */
export function messageRow(m, { tag = 'li', pinned = false } = {}) {
  return el(tag, {
    class: `chat-msg${m.host ? ' host' : ''}${pinned ? ' pinned' : ''}`, 'data-id': m.id,
  },
  pinned ? el('span', { class: 'chat-pin-tag' }, 'Pinned') : null,
  m.host ? el('span', { class: 'chat-host-tag' }, 'Host') : null,
  el('span', { class: 'chat-author' }, m.author || 'someone'),
  el('span', { class: 'chat-text' }, m.text));
}
