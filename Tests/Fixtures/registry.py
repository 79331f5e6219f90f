#!/usr/bin/env python3
"""Local OCI registries for the test suite: standard library only, plus the openssl, htpasswd
(apache2-utils), docker-registry (Debian's distribution 2.8), setpriv (util-linux) and skopeo
binaries. Nothing is downloaded; everything listens on 127.0.0.1, each on a free port.

    registry.py start DIR [--images IMAGES_DIR] [--watch-pid PID] [--host ADDR]
    registry.py stop DIR

--host ADDR: listen on ADDR (an address of this machine, e.g. the bridge of cluster.py's test
cluster, so that its node namespaces can reach the registries) instead of 127.0.0.1: every
"127.0.0.1" below becomes ADDR, and the TLS certificate also names IP:ADDR.

`start` brings up, each with its own state under DIR:
  open        docker-registry, plain HTTP, no auth
  tls         docker-registry, HTTPS (certificate for IP:127.0.0.1 and DNS:localhost, signed by
              the CA in DIR/ca.pem), no auth
  basic       docker-registry, HTTPS (same CA) + htpasswd basic auth: user `caisson`, a random password
  token       docker-registry, plain HTTP, `auth.token` against the token server below
  tokenServer GET /token?service=caisson-test-registry&scope=repository:NAME:pull[,push] ...
              HTTP Basic caisson:PASSWORD -> every requested action; no credentials -> pull of
              repositories named public/... only (push dropped; any other scope -> 401); wrong
              credentials -> 401. Tokens are RS256 JWTs with an x5c header (self-signed signer
              certificate DIR/token/signer.pem = the registry's rootcertbundle).
  stall       /v2/ -> 200; GET of a blob: headers + 16 bytes, then nothing (never closes); GET of
              a manifest: headers, then nothing; HEAD of either: nothing at all
  flaky       reverse proxy to `open`: the first request for every distinct path (query ignored,
              any method) gets 503, later ones are proxied
  redirect    Basic auth (same user/password) required; then GET of /v2/NAME/blobs/DIGEST -> 307
              to the same path on `redirectTarget` (another
              port: another origin), which appends one JSON line per request to
              DIR/redirect-target-headers.log ({"method", "path", "authorization": bool,
              "headers"}) and serves the content from `open`; every other request is proxied to
              `open`. Requests reaching `redirect` itself are logged the same way to
              DIR/redirect-origin-headers.log.
Every server answers when `start` returns (docker-registry: /v2/, the Python ones: /-/ready).

With --images IMAGES_DIR (made by `images.py build`), every image in IMAGES_DIR/manifest.json
(plus busybox:docker, see images.py) is pushed with skopeo to open, tls, basic and token (the
latter twice: public/NAME:TAG and private/NAME:TAG).

DIR/registries.json (also printed on stdout):
  {"open": "127.0.0.1:P", "tls": "127.0.0.1:P", "basic": "127.0.0.1:P", "token": "127.0.0.1:P",
   "tokenServer": "127.0.0.1:P", "stall": "127.0.0.1:P", "flaky": "127.0.0.1:P",
   "redirect": "127.0.0.1:P", "redirectTarget": "127.0.0.1:P",
   "ca": "DIR/ca.pem", "certDir": "DIR/certs" (ca.crt, for skopeo --*-cert-dir),
   "user": "caisson", "password": "...",
   "tokenRealm": "http://127.0.0.1:P/token", "service": "caisson-test-registry",
   "issuer": "caisson-test-issuer",
   "redirectLog": "DIR/redirect-target-headers.log", "redirectOriginLog": "DIR/redirect-origin-headers.log",
   "logs": {"open": "DIR/open/registry.log", ...}, "pids": [supervisor, children...]}

`start` returns once all of that is ready, leaving a supervisor process (its stdout/stderr go to
DIR/supervisor.log) that owns the servers. Every server is started through
`setpriv --pdeathsig SIGTERM`, so it dies with the supervisor; the supervisor stops everything
when the process that ran `start` exits (or PID given by --watch-pid; 0: never), on SIGTERM, or
on `stop`. Failures are reported on stderr (with the relevant log's tail) and exit status 1.
"""
import argparse
import base64
import datetime
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import select
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from supervision import alive, kill_all, log_tail, start_supervisor, watch_descriptor

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.abspath(__file__)
USER = "caisson"
SERVICE = "caisson-test-registry"
ISSUER = "caisson-test-issuer"
READY_TIMEOUT = 10
PUSH_TIMEOUT = 300
REGISTRIES = ("open", "tls", "basic", "token")
SERVERS = ("tokenServer", "stall", "flaky", "redirect", "redirectTarget")
PASSWORD_ENV = "CAISSON_TEST_REGISTRY_PASSWORD"
HOST = "127.0.0.1"  # --host


class Failure(Exception):
    pass


class Terminated(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Certificates, passwords, configuration

OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = caisson
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost{extra_san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[signer_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
"""


def run_tool(args, **kwargs):
    try:
        return subprocess.run(args, check=True, stdin=kwargs.pop("stdin", subprocess.DEVNULL),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs).stdout
    except FileNotFoundError:
        raise Failure(f"{args[0]} is not installed")
    except subprocess.CalledProcessError as e:
        raise Failure(f"{' '.join(args)} failed ({e.returncode}):\n{e.stderr.decode(errors='replace')}")


def make_certificates(d):
    """DIR/ca.pem (+ca.key), DIR/tls/server.pem (+key) for 127.0.0.1/localhost signed by it,
    DIR/token/signer.pem (+key): the self-signed certificate the token server signs with."""
    cnf = os.path.join(d, "openssl.cnf")
    with open(cnf, "w") as f:
        f.write(OPENSSL_CNF.format(extra_san="" if HOST == "127.0.0.1" else f",IP:{HOST}"))
    ca_key, ca = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    server_key, server_csr, server = (os.path.join(d, "tls", n) for n in ("server.key", "server.csr", "server.pem"))
    signer_key, signer = os.path.join(d, "token", "signer.key"), os.path.join(d, "token", "signer.pem")
    common = ["-config", cnf, "-newkey", "rsa:2048", "-nodes", "-days", "3650"]
    # The three keys are independent: make them concurrently.
    jobs = [
        ["openssl", "req", "-x509", *common, "-extensions", "ca_ext", "-subj", "/CN=Caisson test CA",
         "-keyout", ca_key, "-out", ca],
        ["openssl", "req", "-new", *common, "-subj", "/CN=localhost", "-keyout", server_key, "-out", server_csr],
        ["openssl", "req", "-x509", *common, "-extensions", "signer_ext", "-subj", "/CN=Caisson test token signer",
         "-keyout", signer_key, "-out", signer],
    ]
    procs = [(job, subprocess.Popen(job, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
             for job in jobs]
    for job, p in procs:
        out = p.communicate()[0]
        if p.returncode:
            raise Failure(f"{' '.join(job)} failed:\n{out.decode(errors='replace')}")
    run_tool(["openssl", "x509", "-req", "-in", server_csr, "-CA", ca, "-CAkey", ca_key,
              "-set_serial", "0x" + secrets.token_hex(8), "-days", "3650",
              "-extfile", cnf, "-extensions", "server_ext", "-out", server])
    certs = os.path.join(d, "certs")
    os.makedirs(certs, exist_ok=True)
    shutil.copyfile(ca, os.path.join(certs, "ca.crt"))
    return {"ca": ca, "certDir": certs, "serverCert": server, "serverKey": server_key,
            "signerCert": signer, "signerKey": signer_key}


def registry_config(d, name, port, extra):
    storage = os.path.join(d, name, "storage")
    os.makedirs(storage, exist_ok=True)
    config = {
        "version": "0.1",
        "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": storage}, "delete": {"enabled": True},
                    "maintenance": {"uploadpurging": {"enabled": False}}},
        "http": {"addr": f"{HOST}:{port}", "secret": secrets.token_hex(16),
                 "headers": {"X-Content-Type-Options": ["nosniff"]}},
        "health": {"storagedriver": {"enabled": False}},
    }
    for key, value in extra.items():
        config.setdefault(key, {}).update(value)
    path = os.path.join(d, name, "config.yml")
    with open(path, "w") as f:
        json.dump(config, f, indent=1)  # JSON is YAML
    return path


def free_ports(n):
    """n distinct free ports (all held open until every one is chosen)."""
    import socket
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# ----------------------------------------------------------------------------------------------
# start / supervisor

class Child:
    def __init__(self, name, args, log, env):
        self.name, self.log = name, log
        with open(log, "ab") as f:
            self.proc = subprocess.Popen(["setpriv", "--pdeathsig", "SIGTERM", "--", *args], stdin=subprocess.DEVNULL,
                                         stdout=f, stderr=subprocess.STDOUT, env=env, close_fds=True)
        self.reported = False


def opener(ca=None):
    handlers = [urllib.request.ProxyHandler({})]
    if ca:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca)))
    return urllib.request.build_opener(*handlers)


def wait_ready(checks, deadline):
    """checks: name -> (child, url, opener). Any HTTP answer counts as ready."""
    pending, last_error = dict(checks), {}
    while pending:
        for name, (child, url, op) in list(pending.items()):
            if child.proc.poll() is not None:
                raise Failure(f"{name} exited with status {child.proc.returncode} before answering {url}; "
                              f"{child.log}:\n{log_tail(child.log)}")
            try:
                op.open(url, timeout=1).close()
                del pending[name]
            except urllib.error.HTTPError:
                del pending[name]
            except (urllib.error.URLError, OSError) as e:
                last_error[name] = e
        if not pending:
            break
        if time.monotonic() > deadline:
            name, (child, url, _) = next(iter(pending.items()))
            raise Failure(f"{name} did not answer {url} within {READY_TIMEOUT} s "
                          f"(last error: {last_error.get(name)}); {child.log}:\n{log_tail(child.log)}"
                          + ("" if len(pending) == 1 else f"\nalso not ready: {', '.join(list(pending)[1:])}"))
        time.sleep(0.05)


def push_images(d, images, info, env):
    creds = f"{info['user']}:{info['password']}"
    plain = ["--dest-tls-verify=false"]
    cert = ["--dest-cert-dir", info["certDir"]]
    auth = ["--dest-creds", creds]
    jobs = [("open", info["open"], plain), ("tls", info["tls"], cert), ("basic", info["basic"], cert + auth),
            ("token-public", info["token"] + "/public", plain + auth),
            ("token-private", info["token"] + "/private", plain + auth)]
    procs = []
    for name, registry, extra in jobs:
        log = os.path.join(d, f"push-{name}.log")
        with open(log, "wb") as f:
            procs.append((name, registry, log, subprocess.Popen(
                [sys.executable, os.path.join(HERE, "images.py"), "push", images, registry, *extra],
                stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env)))
    deadline = time.monotonic() + PUSH_TIMEOUT
    failures = []
    for name, registry, log, p in procs:
        try:
            p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            failures.append(f"pushing to {name} ({registry}) took over {PUSH_TIMEOUT} s; {log}:\n{log_tail(log)}")
            continue
        if p.returncode:
            failures.append(f"pushing to {name} ({registry}) failed ({p.returncode}); {log}:\n{log_tail(log)}")
    if failures:
        raise Failure("\n".join(failures))


def bring_up(d, images, children):
    """Runs in the supervisor. Fills `children` as it goes (so a failure can stop them)."""
    t0 = time.monotonic()
    for name in REGISTRIES + ("servers",):
        path = os.path.join(d, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        os.makedirs(path)
    for name in ("redirect-target-headers.log", "redirect-origin-headers.log"):
        open(os.path.join(d, name), "w").close()
    os.makedirs(os.path.join(d, "token"), exist_ok=True)
    certs = make_certificates(d)
    password = secrets.token_urlsafe(18)
    htpasswd = os.path.join(d, "basic", "auth.htpasswd")
    with open(htpasswd, "wb") as f:
        f.write(run_tool(["htpasswd", "-Bbn", USER, password]).strip() + b"\n")

    ports = dict(zip(REGISTRIES + SERVERS, free_ports(len(REGISTRIES) + len(SERVERS))))
    addr = {name: f"{HOST}:{port}" for name, port in ports.items()}
    realm = f"http://{addr['tokenServer']}/token"
    tls = {"http": {"tls": {"certificate": certs["serverCert"], "key": certs["serverKey"]}}}
    configs = {
        "open": registry_config(d, "open", ports["open"], {}),
        "tls": registry_config(d, "tls", ports["tls"], tls),
        "basic": registry_config(d, "basic", ports["basic"], dict(
            tls, auth={"htpasswd": {"realm": SERVICE, "path": htpasswd}})),
        "token": registry_config(d, "token", ports["token"], {"auth": {"token": {
            "realm": realm, "service": SERVICE, "issuer": ISSUER, "rootcertbundle": certs["signerCert"]}}}),
    }

    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    server_env = dict(env, **{PASSWORD_ENV: password})
    logs = {}
    for name in REGISTRIES:
        logs[name] = os.path.join(d, name, "registry.log")
        children.append(Child(name, ["docker-registry", "serve", configs[name]], logs[name], env))
    py = [sys.executable, SCRIPT, "serve", "--dir", d, "--host", HOST]
    servers = {
        "tokenServer": ["token", "--port", str(ports["tokenServer"]), "--key", certs["signerKey"],
                        "--cert", certs["signerCert"]],
        "stall": ["stall", "--port", str(ports["stall"])],
        "flaky": ["flaky", "--port", str(ports["flaky"]), "--upstream", str(ports["open"])],
        "redirect": ["redirect", "--port", str(ports["redirect"]), "--upstream", str(ports["open"]),
                     "--target", str(ports["redirectTarget"])],
        "redirectTarget": ["redirect-target", "--port", str(ports["redirectTarget"]), "--upstream", str(ports["open"])],
    }
    for name, args in servers.items():
        logs[name] = os.path.join(d, "servers", f"{name}.log")
        children.append(Child(name, py + args, logs[name], server_env))

    plain, secure = opener(), opener(certs["ca"])
    checks = {}
    for child in children:
        if child.name in REGISTRIES:
            scheme = "https" if child.name in ("tls", "basic") else "http"
            checks[child.name] = (child, f"{scheme}://{addr[child.name]}/v2/", secure if scheme == "https" else plain)
        else:
            checks[child.name] = (child, f"http://{addr[child.name]}/-/ready", plain)
    wait_ready(checks, time.monotonic() + READY_TIMEOUT)
    print(f"all servers answer after {time.monotonic() - t0:.1f} s", flush=True)

    info = dict(addr)
    info.update({"ca": certs["ca"], "certDir": certs["certDir"], "user": USER, "password": password,
                 "tokenRealm": realm, "service": SERVICE, "issuer": ISSUER,
                 "redirectLog": os.path.join(d, "redirect-target-headers.log"),
                 "redirectOriginLog": os.path.join(d, "redirect-origin-headers.log"),
                 "logs": logs, "pids": [os.getpid()] + [c.proc.pid for c in children]})
    if images:
        push_images(d, images, info, env)
        print(f"images pushed after {time.monotonic() - t0:.1f} s", flush=True)
    tmp = os.path.join(d, "registries.json.tmp")
    with open(tmp, "w") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, os.path.join(d, "registries.json"))
    return info


def stop_children(children):
    for c in children:
        if c.proc.poll() is None:
            c.proc.terminate()
    deadline = time.monotonic() + 3
    for c in children:
        try:
            c.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.proc.kill()
            c.proc.wait()


def supervise(d, images, watch_fd, report_fd):
    children = []

    def terminate(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, terminate)
    try:
        try:
            info = bring_up(d, images, children)
            message = b"OK\n" + json.dumps(info, indent=1).encode() + b"\n"
        except Failure as e:
            message = f"registry.py start: {e}\n".encode()
            info = None
        except Exception as e:
            import traceback
            message = f"registry.py start: unexpected error: {e!r}\n{traceback.format_exc()}".encode()
            info = None
        print(message.decode(errors="replace"), flush=True)
        try:
            os.write(report_fd, message)
        except OSError:
            pass  # nobody waits for the answer any more
        os.close(report_fd)
        if info is None:
            return 1
        while True:
            ready, _, _ = select.select([watch_fd] if watch_fd is not None else [], [], [], 1.0)
            if ready:
                print("the watched process exited: stopping", flush=True)
                return 0
            for c in children:
                if not c.reported and c.proc.poll() is not None:
                    c.reported = True
                    print(f"{c.name} exited with status {c.proc.returncode}; {c.log}:\n{log_tail(c.log)}", flush=True)
    except Terminated as e:
        print(f"{e}: stopping", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_children(children)


def ours(pid, d):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode(errors="replace")
    except OSError:
        return False
    return d in cmdline or os.path.basename(SCRIPT) in cmdline


def recorded_pids(d):
    try:
        with open(os.path.join(d, "registries.json")) as f:
            return json.load(f).get("pids", [])
    except (OSError, ValueError):
        return []


def cmd_start(args):
    global HOST
    HOST = args.host
    d = os.path.abspath(args.dir)
    images = os.path.abspath(args.images) if args.images else None
    if images and not os.path.isfile(os.path.join(images, "manifest.json")):
        sys.exit(f"registry.py start: {images}/manifest.json does not exist (make it with images.py build)")
    os.makedirs(d, exist_ok=True)
    running = [p for p in recorded_pids(d) if alive(p) and ours(p, d)]
    if running:
        sys.exit(f"registry.py start: registries of {d} still run (pids {running}): run `registry.py stop {d}` first")
    watch_fd = watch_descriptor("registry.py", args.watch_pid)
    return start_supervisor(d, "registry.py", lambda write_fd: supervise(d, images, watch_fd, write_fd),
                            watch_fd)


def cmd_stop(args):
    d = os.path.abspath(args.dir)
    stopped, stubborn = kill_all([p for p in recorded_pids(d) if alive(p) and ours(p, d)], grace=5.0)
    print(f"stopped {stopped} process(es)" + (f" ({stubborn} with SIGKILL)" if stubborn else ""))
    return 0


# ----------------------------------------------------------------------------------------------
# The small servers (run as `registry.py serve KIND ...`, one process each)

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
              "transfer-encoding", "upgrade", "proxy-connection"}
BLOB_PATH = re.compile(r"^/v2/(.+)/blobs/([a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+)$")
MANIFEST_PATH = re.compile(r"^/v2/(.+)/manifests/([^/]+)$")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "caisson-test"

    def log_message(self, fmt, *args):
        sys.stderr.write(f"{time.strftime('%H:%M:%S')} {self.address_string()} {fmt % args}\n")

    def route(self):
        self.send_error(404)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = lambda self: self.route()

    @property
    def url_path(self):
        return urllib.parse.urlsplit(self.path).path

    def reply(self, status, body=b"", headers=(), content_type="application/json"):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(data)
                data.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else None

    def ready(self):
        if self.url_path == "/-/ready":
            self.reply(200, {"ready": True})
            return True
        return False

    def log_headers(self, path):
        entry = {"time": time.time(), "method": self.command, "path": self.path,
                 "authorization": "Authorization" in self.headers,
                 "headers": {k: ", ".join(self.headers.get_all(k)) for k in dict.fromkeys(self.headers.keys())}}
        with self.server.lock:
            with open(path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def proxy(self, upstream, keep_host=True):
        """Forwards the request to HOST:upstream and relays the answer (buffered)."""
        body = self.read_body()
        try:
            conn = http.client.HTTPConnection(HOST, upstream, timeout=120)
            conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for k, v in self.headers.items():
                if k.lower() in HOP_BY_HOP or k.lower() == "content-length" or (k.lower() == "host" and not keep_host):
                    continue
                conn.putheader(k, v)
            if not keep_host or "Host" not in self.headers:
                conn.putheader("Host", f"{HOST}:{upstream}")
            if body is not None or self.command in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body or b"")))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
            headers = resp.getheaders()
            conn.close()
        except (OSError, http.client.HTTPException) as e:
            self.reply(502, {"errors": [{"code": "UNKNOWN", "message": f"upstream: {e}"}]})
            return
        self.send_response_only(resp.status, resp.reason)
        self.log_request(resp.status)
        length = None
        for k, v in headers:
            if k.lower() in HOP_BY_HOP:
                continue
            if k.lower() == "content-length":
                length = v
                continue
            self.send_header(k, v)
        self.send_header("Content-Length", length if self.command == "HEAD" and length is not None else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


class TokenHandler(Handler):
    def route(self):
        if self.ready():
            return
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/token" or self.command not in ("GET", "HEAD"):
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "GET /token only"}]})
        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [SERVICE])[0]
        if service != SERVICE:
            return self.reply(400, {"errors": [{"code": "DENIED", "message": f"unknown service {service!r}"}]})
        user = None
        auth = self.headers.get("Authorization")
        if auth:
            try:
                scheme, value = auth.split(None, 1)
                name, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                scheme = name = password = ""
            if scheme.lower() != "basic" or name != USER or not hmac.compare_digest(
                    password.encode(), self.server.password.encode()):
                return self.unauthorized("wrong credentials")
            user = name
        access = []
        for scope in (s for value in query.get("scope", []) for s in value.split()):
            parts = scope.split(":")
            if len(parts) < 3:
                return self.reply(400, {"errors": [{"code": "DENIED", "message": f"malformed scope {scope!r}"}]})
            kind, name, actions = parts[0], ":".join(parts[1:-1]), [a for a in parts[-1].split(",") if a]
            if user is None:
                if kind != "repository" or not name.startswith("public/"):
                    return self.unauthorized(f"authentication required for {scope}")
                actions = [a for a in actions if a == "pull"]
            if actions:
                access.append({"type": kind, "name": name, "actions": actions})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": user or "", "aud": service, "exp": now + 300, "nbf": now - 5,
                  "iat": now, "jti": secrets.token_hex(16), "access": access}
        token = self.server.sign(claims)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.log_message("token for %s: %s", user or "anonymous", json.dumps(access))
        self.reply(200, {"token": token, "access_token": token, "expires_in": 300, "issued_at": issued})

    def unauthorized(self, message):
        self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
                   headers=[("WWW-Authenticate", 'Basic realm="caisson-test-token-server"')])


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def setup_token(self, key, cert, password):
        self.key, self.password = key, password
        with open(cert) as f:
            pem = f.read()
        body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
        self.x5c = "".join(body.split())  # base64 of the DER

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        signing_input = b64url(json.dumps(header, separators=(",", ":")).encode()) + "." + \
            b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.key], input=signing_input.encode(),
                                   stdout=subprocess.PIPE, check=True).stdout
        return signing_input + "." + b64url(signature)


class StallHandler(Handler):
    def route(self):
        if self.ready():
            return
        path = self.url_path
        if path in ("/v2", "/v2/"):
            return self.reply(200, b"{}")
        blob, manifest = BLOB_PATH.match(path), MANIFEST_PATH.match(path)
        if not (blob or manifest) or self.command not in ("GET", "HEAD"):
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "the stall server has no such thing"}]})
        self.log_message('"%s" stalls', self.requestline)
        if self.command == "GET":
            self.send_response(200)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            if blob:
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Docker-Content-Digest", blob.group(2))
                self.send_header("Content-Length", str(1 << 20))
            else:
                self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                self.send_header("Content-Length", "4096")
            self.end_headers()
            if blob:
                self.wfile.write(b"\x1f\x8b\x08\x00" + b"\x00" * 12)
            self.wfile.flush()
        # Stall until the client goes away.
        self.close_connection = True
        while True:
            readable, _, _ = select.select([self.connection], [], [], 1.0)
            if readable:
                try:
                    if not self.connection.recv(65536):
                        return
                except OSError:
                    return


class FlakyHandler(Handler):
    def route(self):
        if self.ready():
            return
        path = self.url_path
        with self.server.lock:
            first = path not in self.server.seen
            self.server.seen.add(path)
        if first:
            self.read_body()
            return self.reply(503, {"errors": [{"code": "UNAVAILABLE", "message": "flaky: first request for this path"}]})
        self.proxy(self.server.upstream)


class RedirectHandler(Handler):
    """Demands Basic credentials (like a private registry), so a client holds an Authorization
    header when the 307 to another origin comes: it must not forward it there."""

    def route(self):
        if self.ready():
            return
        self.log_headers(self.server.origin_log)
        expected = "Basic " + base64.b64encode(f"caisson:{os.environ[PASSWORD_ENV]}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            self.read_body()
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "credentials required"}]},
                              headers=[("WWW-Authenticate", 'Basic realm="caisson-redirect"')])
        if self.command == "GET" and BLOB_PATH.match(self.url_path):
            self.read_body()
            return self.reply(307, b"", headers=[("Location", f"http://{HOST}:{self.server.target}{self.path}")])
        self.proxy(self.server.upstream)


class RedirectTargetHandler(Handler):
    def route(self):
        if self.ready():
            return
        self.log_headers(self.server.target_log)
        self.proxy(self.server.upstream, keep_host=False)


def cmd_serve(args):
    kinds = {"token": TokenHandler, "stall": StallHandler, "flaky": FlakyHandler,
             "redirect": RedirectHandler, "redirect-target": RedirectTargetHandler}
    global HOST
    HOST = args.host
    server = Server((HOST, args.port), kinds[args.kind])
    server.lock = threading.Lock()
    server.seen = set()
    server.upstream, server.target = args.upstream, args.target
    server.origin_log = os.path.join(args.dir, "redirect-origin-headers.log")
    server.target_log = os.path.join(args.dir, "redirect-target-headers.log")
    if args.kind == "token":
        server.setup_token(args.key, args.cert, os.environ[PASSWORD_ENV])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print(f"{args.kind} server on {HOST}:{args.port}", file=sys.stderr, flush=True)
    server.serve_forever()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start the registries (returns when they answer)")
    start.add_argument("dir")
    start.add_argument("--images", help="an images.py build output to push everywhere")
    start.add_argument("--watch-pid", type=int, default=None,
                       help="stop everything when this process exits (default: the caller of start; 0: never)")
    start.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on instead of 127.0.0.1 (must be one of this machine's)")
    stop = sub.add_parser("stop", help="stop everything recorded in DIR/registries.json")
    stop.add_argument("dir")
    serve = sub.add_parser("serve", help=argparse.SUPPRESS)
    serve.add_argument("kind", choices=["token", "stall", "flaky", "redirect", "redirect-target"])
    serve.add_argument("--dir", required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--upstream", type=int)
    serve.add_argument("--target", type=int)
    serve.add_argument("--key")
    serve.add_argument("--cert")
    args = parser.parse_args()
    return {"start": cmd_start, "stop": cmd_stop, "serve": cmd_serve}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
