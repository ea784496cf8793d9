#!/usr/bin/env python3
"""A token service for docker-registry's token authentication, for cz's tests.

usage: token_server.py DIR PORT USER PASSWORD REFRESH_TOKEN

Writes DIR/token.pem (the self-signed certificate docker-registry's rootcertbundle names), then
serves http://127.0.0.1:PORT/token as distribution's token spec describes it:
  GET  /token?service=S&scope=repository:NAME:ACTIONS  [Authorization: Basic USER:PASSWORD]
  POST /token  grant_type=refresh_token&refresh_token=REFRESH_TOKEN&service=S&scope=...
       (OAuth2, how docker and cz trade an identity token)
Right credentials get the actions asked for; no credentials get a token with no access (the
registry then refuses); wrong ones get 401. Tokens are RS256 JWTs with the certificate in x5c,
issuer "cz-test-issuer", audience the service asked for. Each request is logged to DIR/token.log
as "GET basic|anonymous" or "POST refresh".
"""
import base64
import datetime
import http.server
import json
import os
import sys
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

directory, port, user, password, refresh = sys.argv[1], int(sys.argv[2]), *sys.argv[3:6]
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cz-test-token-issuer")])
now = datetime.datetime.now(datetime.timezone.utc)
cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
with open(os.path.join(directory, "token.pem"), "wb") as f:
    f.write(cert.public_bytes(serialization.Encoding.PEM))
x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(service, scopes):
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            access.append({"type": "repository", "name": parts[1],
                           "actions": [a for a in parts[2].split(",") if a]})
    t = int(time.time())
    header = {"typ": "JWT", "alg": "RS256", "x5c": [x5c]}
    claims = {"iss": "cz-test-issuer", "sub": user, "aud": service, "exp": t + 300,
              "nbf": t - 10, "iat": t, "jti": os.urandom(8).hex(), "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." +
                     b64url(json.dumps(claims).encode()))
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64url(signature)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def log(self, line):
        with open(os.path.join(directory, "token.log"), "a") as f:
            f.write(line + "\n")

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def grant(self, service, scopes):
        t = token(service, scopes)
        self.answer(200, {"token": t, "access_token": t, "expires_in": 300})

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [""])[0]
        scopes = query.get("scope", [])
        auth = self.headers.get("Authorization", "")
        if not auth:
            self.log("GET anonymous")
            return self.grant(service, [])
        self.log("GET basic")
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if auth != expected:
            return self.answer(401, {"errors": [{"code": "UNAUTHORIZED",
                                                 "message": "wrong user name or password"}]})
        self.grant(service, scopes)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self.log("POST refresh")
        if (form.get("grant_type", [""])[0] != "refresh_token" or
                form.get("refresh_token", [""])[0] != refresh):
            return self.answer(401, {"error": "invalid_grant"})
        self.grant(form.get("service", [""])[0], " ".join(form.get("scope", [])).split())


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
