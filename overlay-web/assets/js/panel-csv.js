// CSV downloads for the panel: the API's answer to `Accept: text/csv`, fetched with the
// admin token and saved under the file name the server gives (or `name`).
import { el, setText } from './views.js';

/** Saves `blob` as a download called `name`. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/** GETs `/api/v1{path}` as CSV and saves it; errors go to `errorEl`, `button` waits meanwhile. */
export async function downloadCsv({ path, name, token, button, errorEl }) {
  setText(errorEl, '');
  button.disabled = true;
  try {
    const resp = await fetch(`/api/v1${path}`, { cache: 'no-store', headers: { authorization: `Bearer ${token}`, accept: 'text/csv' } });
    if (!resp.ok) {
      const data = await resp.json().catch(() => ({}));
      setText(errorEl, data?.error?.message || `The CSV did not download (HTTP ${resp.status}).`);
      return;
    }
    const named = /filename="([^"]+)"/.exec(resp.headers.get('content-disposition') || '')?.[1];
    saveBlob(await resp.blob(), named || name);
  } catch {
    setText(errorEl, 'The server does not answer; is dropwire running?');
  } finally {
    button.disabled = false;
  }
}
