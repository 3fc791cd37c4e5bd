#!/usr/bin/env python3
"""A dropwire webhook receiver that verifies every delivery with the Standard Webhooks
library (pip install standardwebhooks), dedupes on webhook-id, and answers 2xx fast.

    WEBHOOK_SECRET=whsec_... python3 receiver.py [PORT]

Register it: POST /api/v1/webhooks {"url": "https://your-host/hooks", "events": ["*"]}.
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRETS = [s for s in os.environ.get("WEBHOOK_SECRET", "").split(",") if s]
if not SECRETS:
    sys.exit("set WEBHOOK_SECRET to the endpoint's whsec_ secret (comma separated during a rotation)")
VERIFIERS = [Webhook(s) for s in SECRETS]
SEEN = set()  # webhook-ids handled (keep it in your database in production)


def verified(body: bytes, headers: dict):
    for verifier in VERIFIERS:
        try:
            return verifier.verify(body, headers)
        except WebhookVerificationError:
            continue
    return None


class Hooks(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        event = verified(body, dict(self.headers.items()))
        if event is None:
            self.send_response(401)
            self.end_headers()
            return
        msg_id = self.headers["webhook-id"]
        if msg_id not in SEEN:  # a retry or a replay carries the same id
            SEEN.add(msg_id)
            data = event["data"]
            print(json.dumps({"id": msg_id, "type": event["type"], "drop": data.get("drop_id"),
                              "viewer": data.get("viewer_id"), "detail": data["detail"]}), flush=True)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8099
    print(f"listening on http://127.0.0.1:{port}/hooks", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Hooks).serve_forever()
