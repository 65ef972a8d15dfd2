#!/usr/bin/env bash
# A real Keystone plus the stock OpenStack clients, for Holdfast's tests.
#
#   scripts/openstack-env.sh DIR HOLDFAST_URL   set up (or refresh) and start Keystone
#   scripts/openstack-env.sh stop DIR           stop the Keystone started from DIR
#
# Example: scripts/openstack-env.sh target/openstack http://127.0.0.1:18776
#
# What it does (self-contained: needs bash, curl, and a python3 >= 3.10 with venv):
#   1. venvs ks-venv (keystone + gunicorn) and clients-venv in OPENSTACK_VENV_DIR (default DIR)
#      (python-openstackclient + python-cinderclient); a venv whose marker file
#      matches the wanted pins is reused, so a second run skips pip entirely.
#   2. a fresh Keystone under DIR/keystone each run: SQLite, fernet tokens,
#      password_hash_rounds = 4, db_sync, fernet/credential setup, bootstrap
#      (admin / $ADMIN_PASSWORD, region RegionOne, identity endpoints).
#      A Keystone still running from a previous run is stopped first.
#   3. gunicorn (one sync worker, every option in DIR/gunicorn.conf.py) started
#      detached; waits (bounded) for GET /v3/ to answer 200.
#   4. provisioning through Keystone's REST API (one admin token, plain HTTP
#      calls from a single python process: much faster than one `openstack`
#      CLI call per object): projects service/alpha/beta, users holdfast,
#      alice-admin, alice-member, alice-reader, bob-member, their roles, and
#      the block-storage service + endpoints pointing at HOLDFAST_URL.
#   5. DIR/env.json (everything a test needs) and DIR/openrc-<user> files.
#
# Environment knobs (all optional):
#   KEYSTONE_PORT   port Keystone listens on, on 127.0.0.1 (default 5000)
#   PYTHON          interpreter the venvs are built from (default python3)
#   ADMIN_PASSWORD  Keystone admin password (default admin-pw)
#   KEYSTONE_PIP_SPEC / CLIENTS_PIP_SPEC  override the pinned requirements
#   OPENSTACK_VENV_DIR  where the venvs live (default DIR): several DIRs (tests
#                   running at once) may share them; builds are serialised by a lock
set -euo pipefail

KEYSTONE_PIP_SPEC=${KEYSTONE_PIP_SPEC:-"keystone==30.0.0 gunicorn==27.0.1"}
CLIENTS_PIP_SPEC=${CLIENTS_PIP_SPEC:-"python-openstackclient==10.5.0 python-cinderclient==9.10.0"}
KEYSTONE_PORT=${KEYSTONE_PORT:-5000}
PYTHON=${PYTHON:-python3}
ADMIN_PASSWORD=${ADMIN_PASSWORD:-admin-pw}
REGION=RegionOne
READY_TIMEOUT=30

T0=$EPOCHREALTIME
log() { printf '[openstack-env %6.1fs] %s\n' "$(elapsed)" "$*" >&2; }
die() { printf '[openstack-env] ERROR: %s\n' "$*" >&2; exit 1; }
elapsed() { echo "$EPOCHREALTIME - $T0" | awk '{printf "%.1f", $1 - $3}'; }

usage() {
    cat >&2 <<EOF
usage: $0 DIR HOLDFAST_URL     set up and start Keystone + clients under DIR
       $0 stop DIR             stop the Keystone started from DIR
env: KEYSTONE_PORT (default 5000), PYTHON (default python3), ADMIN_PASSWORD
EOF
    exit 2
}

# --- stopping ---------------------------------------------------------------

# alive PID: the process exists and is not a zombie (once detached, gunicorn's
# parent is the machine's init, which may take a while to reap it).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

# group_alive PGID: some live (non-zombie) process is in process group PGID.
# gunicorn's worker holds the listening socket too, so it is not enough to
# see the master gone.
group_alive() {
    local f s fields
    for f in /proc/[0-9]*/stat; do
        { read -r s <"$f"; } 2>/dev/null || continue
        read -ra fields <<<"${s##*) }"   # state ppid pgrp ...
        [[ ${fields[0]} != Z && ${fields[2]} == "$1" ]] && return 0
    done
    return 1
}

# Stop the gunicorn whose pidfile is DIR/keystone/gunicorn.pid, if it is alive
# and really a gunicorn (a stale pidfile may name a recycled pid).
stop_keystone() {
    local dir=$1 pidfile=$1/keystone/gunicorn.pid pid i
    [[ -f $pidfile ]] || return 0
    pid=$(<"$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" \
        && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q gunicorn; then
        log "stopping Keystone (gunicorn pid $pid)"
        # gunicorn was started with setsid: it leads its own process group,
        # so signalling the group reaches its worker too. Even gunicorn's
        # quick shutdown (SIGINT) takes ~3 s here, and this Keystone's state
        # is thrown away on every run, so it is simply killed.
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        for i in $(seq 60); do
            group_alive "$pid" || break
            sleep 0.05
        done
        if group_alive "$pid"; then die "could not stop gunicorn $pid and its worker"; fi
    fi
    rm -f "$pidfile"
}

if [[ ${1:-} == stop ]]; then
    [[ $# -eq 2 ]] || usage
    [[ -d $2 ]] || die "no such directory: $2"
    stop_keystone "$(cd "$2" && pwd)"
    exit 0
fi

[[ $# -eq 2 ]] || usage
HOLDFAST_URL=${2%/}
[[ $HOLDFAST_URL =~ ^https?://[^/]+ ]] || die "HOLDFAST_URL must look like http://host:port, got '$2'"
[[ $KEYSTONE_PORT =~ ^[0-9]+$ ]] || die "KEYSTONE_PORT must be a number, got '$KEYSTONE_PORT'"
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
KEYSTONE_URL=http://127.0.0.1:$KEYSTONE_PORT
command -v curl >/dev/null || die "curl is required"
command -v "$PYTHON" >/dev/null || die "python interpreter '$PYTHON' not found (set PYTHON=...)"

# --- 1. venvs ---------------------------------------------------------------

PYVER=$("$PYTHON" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3]); assert sys.version_info >= (3, 10)') \
    || die "$PYTHON must be Python >= 3.10 (keystone 30 and OSC 10 need it)"

# venv_ready NAME SPEC: DIR/NAME's marker says it holds exactly SPEC for this
# Python (the marker is written last, so a half-built venv is never reused).
# build_venv NAME SPEC: build it from scratch.
VENVS=${OPENSTACK_VENV_DIR:-$DIR}
mkdir -p "$VENVS"
VENVS=$(cd "$VENVS" && pwd)
# One setup at a time builds or checks the shared venvs (flock from util-linux).
exec 9>"$VENVS/.venvs.lock"
flock 9
venv_ready() { [[ -f $VENVS/$1/.holdfast-ready && "$(<"$VENVS/$1/.holdfast-ready")" == "python $PYVER: $2" ]]; }
build_venv() {
    local name=$1 spec=$2 v=$VENVS/$1
    rm -rf "$v"
    "$PYTHON" -m venv "$v" || return 1
    # shellcheck disable=SC2086  # spec is a word list on purpose
    "$v/bin/pip" install --disable-pip-version-check $spec || return 1
    echo "python $PYVER: $spec" >"$v/.holdfast-ready"
}

declare -A VENV_PID=()
for pair in "ks-venv|$KEYSTONE_PIP_SPEC" "clients-venv|$CLIENTS_PIP_SPEC"; do
    name=${pair%%|*} spec=${pair#*|}
    if venv_ready "$name" "$spec"; then
        log "reusing $VENVS/$name ($spec)"
    else
        log "building $VENVS/$name: pip install $spec (log: $VENVS/$name.pip.log)"
        build_venv "$name" "$spec" >"$VENVS/$name.pip.log" 2>&1 &
        VENV_PID[$name]=$!
    fi
done
failed=()
for name in "${!VENV_PID[@]}"; do  # wait for every build, so none is left running
    if wait "${VENV_PID[$name]}"; then
        log "built $VENVS/$name"
    else
        failed+=("$name")
    fi
done
for name in "${failed[@]}"; do
    tail -n 30 "$VENVS/$name.pip.log" >&2
    die "building $VENVS/$name failed (full log: $VENVS/$name.pip.log)"
done
KS=$VENVS/ks-venv/bin
CL=$VENVS/clients-venv/bin
for f in "$KS/keystone-manage" "$KS/gunicorn" "$CL/openstack" "$CL/cinder"; do
    [[ -x $f ]] || die "$f missing; delete $VENVS/*-venv and rerun"
done
exec 9>&-

# --- 2. Keystone configuration, from scratch every run ------------------------

stop_keystone "$DIR"
if (exec 3<>"/dev/tcp/127.0.0.1/$KEYSTONE_PORT") 2>/dev/null; then
    die "port $KEYSTONE_PORT on 127.0.0.1 is already in use (see: ss -ltnp sport = :$KEYSTONE_PORT); set KEYSTONE_PORT, or stop that process (a Keystone whose DIR was deleted while it ran is no longer known to '$0 stop')"
fi

KDIR=$DIR/keystone
rm -rf "$KDIR" "$DIR/env.json"  # a failed run leaves no stale env.json behind
mkdir -p "$KDIR/etc"
cat >"$KDIR/etc/keystone.conf" <<EOF
[DEFAULT]
debug = false
use_stderr = true

[database]
connection = sqlite:///$KDIR/keystone.db

[token]
provider = fernet

[fernet_tokens]
key_repository = $KDIR/fernet-keys

[fernet_receipts]
key_repository = $KDIR/fernet-keys

[credential]
key_repository = $KDIR/credential-keys

[identity]
password_hash_rounds = 4
# bcrypt's own limit; the default (4096) logs a warning on every hash
max_password_length = 72

# One worker process, so an in-memory cache stays coherent (keystone
# invalidates it on its own writes); authenticated calls drop from ~170 ms
# to ~30 ms, for provisioning and for the tests' token validations.
[cache]
enabled = true
backend = dogpile.cache.memory
EOF

mkdir -p "$KDIR/fernet-keys" "$KDIR/credential-keys"
chmod 700 "$KDIR/fernet-keys" "$KDIR/credential-keys"

# keystone parses sys.argv with oslo.config, so gunicorn gets no CLI
# arguments: everything is in gunicorn.conf.py, found in its working dir.
cat >"$DIR/gunicorn.conf.py" <<EOF
# Written by scripts/openstack-env.sh; rewritten on every run.
wsgi_app = "keystone.wsgi.api:application"
bind = "127.0.0.1:$KEYSTONE_PORT"
workers = 1
worker_class = "sync"
timeout = 120
graceful_timeout = 5
raw_env = ["OS_KEYSTONE_CONFIG_DIR=$KDIR/etc"]
pidfile = "$KDIR/gunicorn.pid"
errorlog = "$KDIR/keystone.log"
accesslog = "$KDIR/access.log"
capture_output = True
control_socket_disable = True
EOF

# --- 3. set up the database, start and wait ---------------------------------

# fernet_setup, credential_setup, db_sync and bootstrap, as keystone-manage
# would run them, but in one python process: importing keystone costs ~3 s,
# the four steps together ~1.5 s. gunicorn's worker needs the keys to load
# the app but touches the database only on a request, so it is started as
# soon as the keys exist and boots while db_sync and bootstrap run.
log "keystone-manage fernet_setup, credential_setup, db_sync, bootstrap (log: $KDIR/keystone-manage.log)"
"$KS/python" - "$KDIR/etc/keystone.conf" "$(id -un)" "$(id -gn)" "$ADMIN_PASSWORD" "$REGION" "$KEYSTONE_URL/v3/" \
    >"$KDIR/keystone-manage.log" 2>&1 <<'PYEOF' &
import sys, warnings
warnings.simplefilter("ignore")  # eventlet deprecation noise
from keystone.cmd import cli

conf, user, group, password, region, url = sys.argv[1:]
owner = ["--keystone-user", user, "--keystone-group", group]
for step in (["fernet_setup", *owner], ["credential_setup", *owner], ["db_sync"],
             ["bootstrap", "--bootstrap-password", password, "--bootstrap-region-id", region,
              "--bootstrap-admin-url", url, "--bootstrap-internal-url", url,
              "--bootstrap-public-url", url]):
    cli.CONF.clear()  # forget the previous step's parsed arguments
    try:
        cli.main(argv=["keystone-manage", "--config-file", conf, *step])
    except SystemExit as e:
        if e.code not in (0, None):
            sys.exit(f"keystone-manage {step[0]} exited with {e.code}")
    print(f"=== keystone-manage {step[0]}: done", file=sys.stderr, flush=True)
PYEOF
MANAGE_PID=$!
manage_failed() {
    tail -n 30 "$KDIR/keystone-manage.log" >&2
    die "keystone-manage steps failed (log: $KDIR/keystone-manage.log)"
}
until grep -q '^=== keystone-manage credential_setup: done' "$KDIR/keystone-manage.log" 2>/dev/null; do
    alive "$MANAGE_PID" || { wait "$MANAGE_PID" || true; manage_failed; }
    sleep 0.05
done
chmod 700 "$KDIR/fernet-keys" "$KDIR/credential-keys"

log "starting Keystone on $KEYSTONE_URL (log: $KDIR/keystone.log)"
(cd "$DIR" && exec setsid nohup "$KS/gunicorn" </dev/null >"$KDIR/gunicorn.out" 2>&1) &
GUNICORN_PID=$!  # setsid execs in place here: this is gunicorn's master, a group leader
disown "$GUNICORN_PID"  # no "Killed" job notice from bash if a failed run kills it
# A run that fails from here on leaves no Keystone behind.
on_exit() {
    local rc=$?
    if ((rc != 0)); then
        kill -KILL -- "-$GUNICORN_PID" 2>/dev/null || true
        rm -f "$KDIR/gunicorn.pid"
    fi
}
trap on_exit EXIT

show_logs() {
    echo "--- $KDIR/gunicorn.out (tail)" >&2; tail -n 20 "$KDIR/gunicorn.out" >&2 2>/dev/null || true
    echo "--- $KDIR/keystone.log (tail)" >&2; tail -n 40 "$KDIR/keystone.log" >&2 2>/dev/null || true
}
wait "$MANAGE_PID" || manage_failed
log "database ready (db_sync, bootstrap done)"
deadline=$((SECONDS + READY_TIMEOUT))
while :; do
    code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$KEYSTONE_URL/v3/" || true)
    [[ $code == 200 ]] && break
    if ! alive "$GUNICORN_PID"; then
        show_logs; die "gunicorn exited before Keystone answered"
    fi
    if ((SECONDS >= deadline)); then
        show_logs
        die "Keystone did not answer 200 on $KEYSTONE_URL/v3/ within ${READY_TIMEOUT}s (last status: ${code:-none})"
    fi
    sleep 0.2
done
log "Keystone answers on $KEYSTONE_URL/v3/"

# --- 4 + 5. provisioning, env.json, openrc files ------------------------------

log "provisioning projects, users, roles and the block-storage service"
KEYSTONE_URL=$KEYSTONE_URL HOLDFAST_URL=$HOLDFAST_URL DIR=$DIR REGION=$REGION \
ADMIN_PASSWORD=$ADMIN_PASSWORD OPENSTACK_BIN=$CL/openstack CINDER_BIN=$CL/cinder \
KEYSTONE_PID=$(<"$KDIR/gunicorn.pid") \
"$KS/python" - <<'PYEOF' || { show_logs; die "provisioning failed"; }
import json, os, shlex, sys, urllib.error, urllib.request

E = os.environ
KS, HF, DIR, REGION = E["KEYSTONE_URL"], E["HOLDFAST_URL"], E["DIR"], E["REGION"]
ADMIN_PW = E["ADMIN_PASSWORD"]
token = None

def call(method, path, body=None, ok=(200, 201, 204)):
    req = urllib.request.Request(KS + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    req.add_header("Accept", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, headers, raw = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, raw = e.code, e.headers, e.read()
    if status not in ok:
        sys.exit(f"{method} {path} -> {status}: {raw[:500].decode(errors='replace')}")
    return headers, (json.loads(raw) if raw else None)

def password_auth(user, password, project):
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}

h, body = call("POST", "/v3/auth/tokens?nocatalog", password_auth("admin", ADMIN_PW, "admin"))
token = h["X-Subject-Token"]
admin_user_id = body["token"]["user"]["id"]
admin_project_id = body["token"]["project"]["id"]

roles = {r["name"]: r["id"] for r in call("GET", "/v3/roles")[1]["roles"]}
for name in ("admin", "member", "reader", "service"):
    if name not in roles:  # bootstrap makes them all in recent releases
        roles[name] = call("POST", "/v3/roles", {"role": {"name": name}})[1]["role"]["id"]

projects = {"admin": admin_project_id}
for name, desc in (("service", "OpenStack services"), ("alpha", "Holdfast tests: project alpha"),
                   ("beta", "Holdfast tests: project beta")):
    projects[name] = call("POST", "/v3/projects", {"project": {
        "name": name, "domain_id": "default", "description": desc, "enabled": True}})[1]["project"]["id"]

# name, password, project, role
USERS = [("holdfast", "holdfast-pw", "service", "service"),
         ("alice-admin", "pw", "alpha", "admin"),
         ("alice-member", "pw", "alpha", "member"),
         ("alice-reader", "pw", "alpha", "reader"),
         ("bob-member", "pw", "beta", "member")]
users = {"admin": {"id": admin_user_id, "password": ADMIN_PW, "project": "admin", "role": "admin"}}
for name, pw, project, role in USERS:
    uid = call("POST", "/v3/users", {"user": {
        "name": name, "password": pw, "domain_id": "default", "enabled": True,
        "default_project_id": projects[project]}})[1]["user"]["id"]
    call("PUT", f"/v3/projects/{projects[project]}/users/{uid}/roles/{roles[role]}")
    users[name] = {"id": uid, "password": pw, "project": project, "role": role}

# Cinder's catalog entry. keystoneauth (used by both OSC/openstacksdk and
# cinderclient) treats volumev3 as an alias of block-storage, so one
# block-storage service is found by clients asking for either.
endpoint_url = HF + "/v3/%(project_id)s"
service_id = call("POST", "/v3/services", {"service": {
    "name": "cinderv3", "type": "block-storage", "enabled": True,
    "description": "Holdfast (Cinder block-storage API v3)"}})[1]["service"]["id"]
endpoints = {}
for iface in ("public", "internal", "admin"):
    endpoints[iface] = call("POST", "/v3/endpoints", {"endpoint": {
        "service_id": service_id, "interface": iface, "region_id": REGION,
        "url": endpoint_url, "enabled": True}})[1]["endpoint"]["id"]

def os_env(name):
    u = users[name]
    return {"OS_AUTH_URL": KS + "/v3", "OS_IDENTITY_API_VERSION": "3", "OS_REGION_NAME": REGION,
            "OS_USERNAME": name, "OS_PASSWORD": u["password"], "OS_PROJECT_NAME": u["project"],
            "OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_INTERFACE": "public"}

for name, u in users.items():
    u["project_id"] = projects[u["project"]]
    u["env"] = os_env(name)
    u["openrc"] = os.path.join(DIR, f"openrc-{name}")
    with open(u["openrc"], "w") as f:
        f.write(f"# {name}: {u['role']} on project {u['project']} (written by scripts/openstack-env.sh)\n")
        f.write("".join(f"export {k}={shlex.quote(v)}\n" for k, v in u["env"].items()))

env = {
    "keystone_url": KS,
    "auth_url": KS + "/v3",
    "keystone_pid": int(E["KEYSTONE_PID"]),
    "region": REGION,
    "holdfast_url": HF,
    "admin_password": ADMIN_PW,
    "projects": projects,
    "roles": roles,
    "users": users,
    "service_user": {"name": "holdfast", "password": users["holdfast"]["password"],
                     "project": "service", "project_id": projects["service"],
                     "user_domain": "Default", "project_domain": "Default"},
    "block_storage": {"service_id": service_id, "service_name": "cinderv3",
                      "service_type": "block-storage", "url": endpoint_url, "endpoints": endpoints},
    "bin": {"openstack": E["OPENSTACK_BIN"], "cinder": E["CINDER_BIN"]},
    "dir": DIR,
}
tmp = os.path.join(DIR, "env.json.tmp")
with open(tmp, "w") as f:
    json.dump(env, f, indent=2, sort_keys=True)
    f.write("\n")
os.replace(tmp, os.path.join(DIR, "env.json"))
PYEOF

log "ready: $DIR/env.json, openrc files $DIR/openrc-{admin,holdfast,alice-admin,alice-member,alice-reader,bob-member}"
log "Keystone pid $(<"$KDIR/gunicorn.pid"); stop it with: $0 stop $DIR"
