// A dropwire webhook receiver that verifies every delivery with the Standard Webhooks
// library (npm install standardwebhooks), dedupes on webhook-id, and answers 2xx fast.
//
//     WEBHOOK_SECRET=whsec_... node receiver.mjs [PORT]
//
// Register it: POST /api/v1/webhooks {"url": "https://your-host/hooks", "events": ["*"]}.
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const secrets = (process.env.WEBHOOK_SECRET || '').split(',').filter(Boolean);
if (secrets.length === 0) {
  console.error("set WEBHOOK_SECRET to the endpoint's whsec_ secret (comma separated during a rotation)");
  process.exit(2);
}
// The library takes the base64 part; "whsec_" is stripped here.
const verifiers = secrets.map((s) => new Webhook(s.replace(/^whsec_/, '')));
const seen = new Set(); // webhook-ids handled (keep them in your database in production)

function verified(body, headers) {
  for (const v of verifiers) {
    try { return v.verify(body, headers); } catch { /* try the next secret */ }
  }
  return null;
}

const port = Number(process.argv[2] || 8098);
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const event = verified(body, req.headers);
    if (!event) { res.writeHead(401).end(); return; }
    const id = req.headers['webhook-id'];
    if (!seen.has(id)) { // a retry or a replay carries the same id
      seen.add(id);
      const d = event.data;
      console.log(JSON.stringify({ id, type: event.type, drop: d.drop_id, viewer: d.viewer_id, detail: d.detail }));
    }
    res.writeHead(204).end();
  });
}).listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}/hooks`));
