// The live page's chat panel: the pinned message on top, the last messages (host ones
// marked), and, for a signed-in viewer, an input held to the hub's 280 characters; an
// anonymous viewer sees "Sign in to chat". A refused message says why (slow mode with its
// wait, muted, banned, a blocked word, too long) and keeps the text for another try. The
// panel sits under the stock and the board, so nothing it does moves the Claim button.
import { $, setText } from './views.js';
import { CHAT_MAX, chatLength, chatRefusal, clip, messageRow } from './chat.js';

export class LiveChat {
  /** `client`: the page's DropClient; `signedIn()`: whether a viewer token is held; `join()`: opens the handle dialog. */
  constructor(client, { signedIn, join, onUnauthorized }) {
    this.client = client;
    this.signedIn = signedIn;
    this.join = join;
    this.onUnauthorized = onUnauthorized;
    this.sending = false;
    this.shownPin = undefined;
  }

  mount() {
    $('chat-input').addEventListener('input', () => this.limit());
    $('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.send();
    });
    $('chat-join').addEventListener('click', () => this.join());
    this.limit();
    return this;
  }

  /** Holds the input to CHAT_MAX scalar values and shows what is left. */
  limit() {
    const input = $('chat-input');
    if (chatLength(input.value) > CHAT_MAX) input.value = clip(input.value);
    const left = CHAT_MAX - chatLength(input.value);
    setText($('chat-count'), String(left));
    $('chat-count').dataset.low = left <= 20 ? 'yes' : 'no';
  }

  async send() {
    const input = $('chat-input');
    const text = input.value.trim();
    if (this.sending) return;
    if (!text) {
      setText($('chat-error'), chatRefusal({ reason: 'empty' }));
      return;
    }
    this.sending = true;
    this.render();
    const r = await this.client.chat(text);
    this.sending = false;
    if (r.ok) {
      input.value = '';
      this.limit();
      setText($('chat-error'), '');
    } else {
      setText($('chat-error'), chatRefusal(r));
      $('chat-error').dataset.reason = r.reason || '';
      if (r.reason === 'unauthorized') this.onUnauthorized();
    }
    this.render();
  }

  /** The panel from the drop's chat state. */
  render() {
    const d = this.client.drop;
    if (!d) return;
    const c = d.chat;
    const off = !c.enabled || d.state === 'closed';
    $('chat').dataset.enabled = off ? 'no' : 'yes';
    setText($('chat-mode'), off ? 'chat is off' : c.slow_mode_s ? `slow mode: one message every ${c.slow_mode_s}s` : '');
    const me = this.signedIn();
    $('chat-form').hidden = !me;
    $('chat-signin').hidden = me;
    $('chat-input').disabled = off;
    $('chat-send').disabled = off || this.sending || !this.client.connected;

    const pinKey = c.pinned ? `${c.pinned.id}` : '';
    if (this.shownPin !== pinKey) {
      this.shownPin = pinKey;
      $('chat-pinned').hidden = !c.pinned;
      $('chat-pinned').replaceChildren(...(c.pinned ? [messageRow(c.pinned, { tag: 'div', pinned: true })] : []));
    }

    const list = $('chat-list');
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 24;
    const want = c.recent.map((m) => m.id);
    const have = [...list.children].map((n) => n.dataset.id);
    if (want.join('\n') === have.join('\n')) return;
    const byId = new Map([...list.children].map((n) => [n.dataset.id, n]));
    const wanted = new Set(want);
    for (const [id, n] of byId) if (!wanted.has(id)) n.remove();
    // Messages only ever join at the end (the hub's order), so append the new ones.
    for (const m of c.recent) if (!byId.has(m.id)) list.append(messageRow(m));
    // An older message new to the page (a snapshot after a long gap): rebuild in order.
    if ([...list.children].some((n, i) => n.dataset.id !== want[i])) {
      const nodes = new Map([...list.children].map((n) => [n.dataset.id, n]));
      list.replaceChildren(...want.map((id) => nodes.get(id)));
    }
    if (atBottom) list.scrollTop = list.scrollHeight;
  }
}
