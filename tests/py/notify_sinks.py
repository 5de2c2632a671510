"""Receivers for the notification tests, each printing one JSON line per thing it received.

    notify_sinks.py smtp
        A real SMTP server (aiosmtpd). Per message: {"from", "to", "subject", "text"}.
    notify_sinks.py webhook --secret-file F [--host H] [--fail N] [--status S] [--redirect URL]
        An HTTP receiver that checks each request with the official Standard Webhooks verifier
        (the `standardwebhooks` package) against the secret in F (read on every request, so
        the test can write it after making the channel). Answers --status (default 500) to the
        first --fail requests, 307 to --redirect when given, 204 otherwise.
        Per request: {"id", "timestamp", "verified", "error", "body", "answered", "at"}.
    notify_sinks.py twilio --sid SID --token TOKEN
        Twilio's Messages API as its documentation describes it: POST
        /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP basic auth (account SID and
        auth token), form fields To, From and Body. Answers 201 with a message resource, or a
        Twilio-style error. Per request: {"ok", "problem", "to", "from", "body"}.

The first line is always {"ready": PORT}.
"""

import argparse
import base64
import email
import email.policy
import http.server
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse

_lock = threading.Lock()


def out(obj):
    with _lock:
        sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def smtp(args):
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            out({
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "subject": str(msg["subject"]),
                "text": msg.get_content().rstrip("\n"),
            })
            return "250 Message accepted for delivery"

    port = free_port(args.host)
    controller = Controller(Handler(), hostname=args.host, port=port)
    controller.start()
    out({"ready": port})
    threading.Event().wait()


def webhook(args):
    from standardwebhooks.webhooks import Webhook

    state = {"requests": 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            state["requests"] += 1
            n = state["requests"]
            record = {
                "path": self.path,
                "id": self.headers.get("webhook-id"),
                "timestamp": self.headers.get("webhook-timestamp"),
                "at": time.time(),
            }
            try:
                with open(args.secret_file) as f:
                    secret = f.read().strip()
                record["body"] = Webhook(secret).verify(body, dict(self.headers.items()))
                record["verified"], record["error"] = True, None
            except Exception as e:  # the verifier's refusal, or no secret yet
                record["verified"], record["error"] = False, f"{type(e).__name__}: {e}"
                record["body"] = None
            if args.redirect:
                status = 307
            elif n <= args.fail:
                status = args.status
            else:
                status = 204
            record["answered"] = status
            out(record)
            self.send_response(status)
            if status == 307:
                self.send_header("location", args.redirect)
            self.send_header("content-length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer((args.host, 0), Handler)
    out({"ready": server.server_address[1]})
    server.serve_forever()


def twilio(args):
    path = f"/2010-04-01/Accounts/{args.sid}/Messages.json"
    expected_auth = "Basic " + base64.b64encode(f"{args.sid}:{args.token}".encode()).decode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, status, obj):
            data = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def refuse(self, status, code, problem, fields=None):
            record = {"ok": False, "problem": problem}
            record.update(fields or {})
            out(record)
            self.answer(status, {"code": code, "message": problem, "status": status,
                                 "more_info": f"https://www.twilio.com/docs/errors/{code}"})

        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("content-length", "0")))
            if self.path != path:
                return self.refuse(404, 20404, f"no such resource {self.path}")
            if self.headers.get("authorization") != expected_auth:
                return self.refuse(401, 20003, "authentication failed")
            ctype = self.headers.get("content-type", "")
            if not ctype.startswith("application/x-www-form-urlencoded"):
                return self.refuse(400, 20001, f"content type {ctype!r} is not a form")
            form = urllib.parse.parse_qs(raw.decode(), strict_parsing=True)
            fields = {k.lower(): v[0] for k, v in form.items()}
            for name in ("To", "From", "Body"):
                if len(form.get(name, [])) != 1:
                    return self.refuse(400, 21604 if name == "To" else 21603,
                                       f"exactly one {name} is required", fields)
            to, sender = form["To"][0], form["From"][0]
            if to.startswith("whatsapp:") != sender.startswith("whatsapp:"):
                return self.refuse(400, 63007, "To and From must both be WhatsApp addresses or neither", fields)
            number = to.removeprefix("whatsapp:")
            if not (number.startswith("+") and number[1:].isdigit()):
                return self.refuse(400, 21211, f"the 'To' number {to} is not a valid phone number", fields)
            sid = "SM" + secrets.token_hex(16)
            out({"ok": True, "problem": None, "sid": sid, **fields})
            self.answer(201, {"sid": sid, "account_sid": args.sid, "to": to, "from": sender,
                              "body": form["Body"][0], "status": "queued", "api_version": "2010-04-01"})

    server = http.server.ThreadingHTTPServer((args.host, 0), Handler)
    out({"ready": server.server_address[1]})
    server.serve_forever()


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("smtp")
    s.add_argument("--host", default="127.0.0.1")
    w = sub.add_parser("webhook")
    w.add_argument("--host", default="127.0.0.1")
    w.add_argument("--secret-file", required=True)
    w.add_argument("--fail", type=int, default=0)
    w.add_argument("--status", type=int, default=500)
    w.add_argument("--redirect")
    t = sub.add_parser("twilio")
    t.add_argument("--host", default="127.0.0.1")
    t.add_argument("--sid", required=True)
    t.add_argument("--token", required=True)
    args = p.parse_args()
    {"smtp": smtp, "webhook": webhook, "twilio": twilio}[args.mode](args)


if __name__ == "__main__":
    main()
