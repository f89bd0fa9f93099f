#!/usr/bin/python3
"""A TLS endpoint that answers like a broken Keystone or Barbican, for svmkey's tests.

usage: garbage_tls_server.py CERT KEY
Listens on a free 127.0.0.1 port, prints the port on stdout, serves until killed.
What it answers depends on the path (see ROUTES); everything else gets 500 with garbage.
"""
import http.server
import json
import ssl
import sys


def reply(handler, status, body=b"", headers=()):
    handler.send_response(status)
    for k, v in headers:
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Connection", "close")
    handler.end_headers()
    handler.wfile.write(body)


TOKEN_BODY = json.dumps({"token": {"expires_at": "2099-01-01T00:00:00.000000Z",
                                   "methods": ["application_credential"]}}).encode()

# path suffix -> (status, body, headers)
ROUTES = {
    # Keystone, POST .../v3/auth/tokens
    "/keystone/no-token/v3/auth/tokens": (201, TOKEN_BODY, []),
    "/keystone/bad-json/v3/auth/tokens": (201, b"{not json", [("X-Subject-Token", "gAAAAfake")]),
    "/keystone/no-expiry/v3/auth/tokens": (201, b'{"token": {}}', [("X-Subject-Token", "gAAAAfake")]),
    "/keystone/bad-expiry/v3/auth/tokens": (201, b'{"token": {"expires_at": "tomorrow"}}',
                                            [("X-Subject-Token", "gAAAAfake")]),
    "/keystone/500/v3/auth/tokens": (500, b"\x00\xffgarbage<html>", []),
    "/keystone/401/v3/auth/tokens": (401, b'{"error": {"code": 401}}', []),
    # Barbican, GET .../secrets/<id>/payload and GET .../secrets/<id>
    "/barbican/v1/secrets/short/payload": (200, b"\x01" * 31, []),
    "/barbican/v1/secrets/long/payload": (200, b"\x02" * 33, []),
    "/barbican/v1/secrets/empty/payload": (200, b"", []),
    "/barbican/v1/secrets/500/payload": (500, b"\x00garbage", []),
    "/barbican/v1/secrets/418/payload": (418, b"teapot", []),
    "/barbican/v1/secrets/notjson": (200, b"<html>garbage</html>", []),
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test output stays readable
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)  # the request body is not looked at (nor logged)
        path = self.path
        if path.startswith("/raw/"):
            # not HTTP at all on a good TLS connection
            self.wfile.write(b"garbage garbage garbage\r\n\r\n")
            self.close_connection = True
            return
        for suffix, (status, body, headers) in ROUTES.items():
            if path.endswith(suffix):
                reply(self, status, body, headers)
                return
        reply(self, 500, b"\xde\xad garbage")

    do_GET = answer
    do_POST = answer
    do_HEAD = answer


def main():
    cert, key = sys.argv[1], sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
