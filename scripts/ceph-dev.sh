#!/usr/bin/env bash
# scripts/ceph-dev.sh — a throwaway single-node Ceph (Debian 12's Pacific 16.2) for
# Holdfast's tests and benchmarks: 1 mon + 1 mgr + 1 osd on memstore (+ optional
# radosgw), pool size 1, everything bound to 127.0.0.1, all state under one
# directory, no systemd. Installs Debian's Ceph packages first when they are missing.
#
#   eval "$(scripts/ceph-dev.sh start DIR)"    # a shell ready for `rbd` and Holdfast
#
# Usage:
#   ceph-dev.sh start   DIR [options]   install if needed, create (first time) or restart daemons;
#                                       prints the client settings as `export` lines
#   ceph-dev.sh stop    DIR             stop daemons gracefully (by recorded PID only)
#   ceph-dev.sh kill    DIR             SIGKILL daemons (by recorded PID only)
#   ceph-dev.sh freeze  DIR             SIGSTOP daemons: a cluster that stops answering
#   ceph-dev.sh thaw    DIR             SIGCONT daemons; returns once it answers again, data intact
#   ceph-dev.sh destroy DIR             stop, then delete DIR
#   ceph-dev.sh status  DIR             show PIDs and `ceph -s`
#   ceph-dev.sh env     DIR             print the client environment
#   ceph-dev.sh rgw-keystone DIR --keystone-url URL --port N
#                                       (re)start a second radosgw that takes Keystone
#                                       tokens (Swift at http://127.0.0.1:N/swift/v1/AUTH_<project>,
#                                       users made from Keystone projects); Keystone's admin
#                                       user logs in as KEYSTONE_ADMIN_USER/_PASSWORD/_PROJECT
#                                       (admin / admin-pw / admin, domain Default)
#   ceph-dev.sh install                 only install the packages
#
# Adapted from the workplace's reference script (shared/tools/ceph-dev-cluster.sh);
# shared/docs/ceph-dev.md has the measurements and pitfalls behind each setting.
#
# Options for start (also settable as environment variables):
#   --rgw                 also run radosgw (S3 + Swift)          CEPH_DEV_RGW=1
#   --port-base N|auto    mon v2 = N, mon v1 = N+1, rgw = N+2    CEPH_DEV_PORT_BASE (13300)
#                         auto = first free base among 13300, 13310, ... (parallel clusters)
#   --objectstore S       memstore | bluestore | auto            CEPH_DEV_OBJECTSTORE (auto)
#                         auto = memstore, falling back to bluestore-on-file if the
#                         memstore OSD cannot be created
#   --osd-size SIZE       memstore capacity / bluestore sparse file size  CEPH_DEV_OSD_SIZE (8G)
#   --pool NAME           RBD pool to create (repeatable)        CEPH_DEV_POOLS ("rbd backups")
#   --timeout SECS        per-phase wait limit                   CEPH_DEV_TIMEOUT (120)
#
# Needs Debian 12 and root (or the packages already installed): apt-get install
# ceph-mon ceph-mgr ceph-osd ceph-common radosgw, about 40 s and 310 MB the first time.
# Runs the daemons as the invoking user (root in containers works).
set -euo pipefail

PACKAGES="ceph-mon ceph-mgr ceph-osd ceph-common radosgw"
have_packages() {
  command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null && command -v radosgw >/dev/null \
    && [ -e /usr/lib/x86_64-linux-gnu/librbd.so.1 ]
}
install_packages() {
  have_packages && return 0
  command -v apt-get >/dev/null || { echo "ceph-dev: Ceph is not installed and there is no apt-get" >&2; exit 1; }
  local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  # Test processes start their clusters in parallel: one installs while the others
  # wait for it (two apt-gets at once: "Could not get lock /var/lib/dpkg/lock-frontend").
  exec 9>"${TMPDIR:-/tmp}/holdfast-ceph-install.lock"
  flock 9
  if ! have_packages; then
    echo "ceph-dev: installing Debian's Ceph packages ($PACKAGES)" >&2
    # Anyone else's apt (an unattended upgrade) is waited for too.
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends $PACKAGES >&2
  fi
  # Closed, not just unlocked: the daemons started next must not inherit it.
  exec 9>&-
}
if [ "${1:-}" = install ]; then install_packages; exit 0; fi

CLEANUP_ON_DIE=0
die() {
  echo "ceph-dev: error: $*" >&2
  # a failed create leaves no daemons behind (logs stay in DIR/log)
  if [ "$CLEANUP_ON_DIE" = 1 ]; then CLEANUP_ON_DIE=0; stop_all KILL; fi
  exit 1
}
log() { printf '[%s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

cmd="${1:-}"; [ $# -ge 2 ] || die "usage: $0 start|stop|kill|freeze|thaw|destroy|status|env DIR [options] | install"
DIR="$2"; shift 2
if [ "$cmd" = start ]; then mkdir -p "$DIR"; fi
[ -d "$DIR" ] || die "$DIR does not exist"
DIR="$(cd "$DIR" && pwd)"
CONF="$DIR/ceph.conf"

RGW="${CEPH_DEV_RGW:-0}"
PORT_BASE="${CEPH_DEV_PORT_BASE:-13300}"
OBJECTSTORE="${CEPH_DEV_OBJECTSTORE:-auto}"
OSD_SIZE="${CEPH_DEV_OSD_SIZE:-8G}"
POOLS="${CEPH_DEV_POOLS:-rbd backups}"
TIMEOUT="${CEPH_DEV_TIMEOUT:-120}"
PAXOS="${CEPH_DEV_PAXOS_INTERVAL:-0.1}"
pools_set=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rgw) RGW=1 ;;
    --port-base) PORT_BASE="$2"; shift ;;
    --objectstore) OBJECTSTORE="$2"; shift ;;
    --osd-size) OSD_SIZE="$2"; shift ;;
    --pool) if [ $pools_set = 0 ]; then POOLS=""; pools_set=1; fi; POOLS="$POOLS $2"; shift ;;
    --timeout) TIMEOUT="$2"; shift ;;
    --keystone-url) KEYSTONE_URL="$2"; shift ;;
    --port) KS_RGW_PORT="$2"; shift ;;
    *) die "unknown option $1" ;;
  esac
  shift
done

to_bytes() { numfmt --from=iec "$1"; }
new_uuid() { cat /proc/sys/kernel/random/uuid; }

# ---- PID bookkeeping: only ever signal PIDs we recorded, and only if the process
# ---- still is the daemon we started (its command line names our ceph.conf).
pidfile() { echo "$DIR/run/$1.pid"; }
is_ours() {  # name -> 0 if the recorded pid is alive and started with our conf
  local f pid; f="$(pidfile "$1")"; [ -s "$f" ] || return 1
  pid="$(cat "$f")"; running "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONF"
}
start_daemon() {  # name binary args... ; runs in foreground mode, in background
  local name="$1"; shift
  if is_ours "$name"; then log "$name already running (pid $(cat "$(pidfile "$name")"))"; return 0; fi
  # setsid: own session, so the daemon outlives the calling shell/job
  setsid "$@" -c "$CONF" -f >>"$DIR/log/$name.stdout" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "started $name pid $!"
}
running() {  # pid alive and not a zombie (the daemons are reparented to PID 1, which may reap late)
  local st; st="$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}
signal_wait() {  # signal names... : signal those daemons at once, wait (10s max), then SIGKILL
  local sig="$1" d pid pids="" i alive=""; shift
  for d in "$@"; do
    if is_ours "$d"; then pid="$(cat "$(pidfile "$d")")"; kill "-$sig" "$pid" 2>/dev/null || true; pids="$pids $pid"; log "SIG$sig $d (pid $pid)"; fi
  done
  for i in $(seq 1 100); do
    alive=""; for pid in $pids; do running "$pid" && alive="$alive $pid"; done
    [ -z "$alive" ] && break; sleep 0.1
  done
  for pid in $alive; do log "pid $pid still alive after 10s, SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; done
  for d in "$@"; do rm -f "$(pidfile "$d")"; done
}
stop_all() {  # TERM (graceful, ~4s) or KILL (throwaway, instant)
  # the mon goes last: a terminating OSD waits up to 5s (osd_mon_shutdown_timeout)
  # for the mon to acknowledge its "mark me down"
  # and radosgw needs the OSD to unregister its watches, or it hangs in shutdown
  signal_wait "$1" rgw rgw.keystone
  signal_wait "$1" osd.0 mgr.x
  signal_wait "$1" mon.a
}
DAEMONS_STOP_ORDER="rgw rgw.keystone osd.0 mgr.x mon.a"
signal_only() {  # signal names... : signal those daemons, wait for nothing
  local sig="$1" d; shift
  for d in "$@"; do
    if is_ours "$d"; then kill "-$sig" "$(cat "$(pidfile "$d")")" 2>/dev/null || true; log "SIG$sig $d"; fi
  done
}

C() { timeout 30 ceph -c "$CONF" --connect-timeout 10 "$@"; }
wait_for() {  # description, then a command that succeeds when ready
  local what="$1"; shift; local t0; t0=$(now)
  until "$@" >/dev/null 2>&1; do
    if awk -v a="$t0" -v b="$(now)" -v t="$TIMEOUT" 'BEGIN{exit !(b-a>t)}'; then
      die "timed out after ${TIMEOUT}s waiting for $what (logs in $DIR/log)"
    fi
    sleep 0.3
  done
}

print_env() {
  local f="$DIR/env.sh"
  [ -f "$f" ] || die "$DIR has no cluster (no env.sh)"
  cat "$f"
}

write_conf() {
  local fsid="$1" auth="cephx"   # keys are generated locally; auth none breaks radosgw 16.2
  local v2=$PORT_BASE v1=$((PORT_BASE + 1)) rgwport=$((PORT_BASE + 2))
  cat >"$CONF" <<EOF
# generated by ceph-dev.sh — throwaway single-node cluster
[global]
fsid = $fsid
mon_host = [v2:127.0.0.1:$v2,v1:127.0.0.1:$v1]
mon_initial_members = a
public_network = 127.0.0.0/8
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
auth_cluster_required = $auth
auth_service_required = $auth
auth_client_required = $auth
auth_allow_insecure_global_id_reclaim = false
keyring = $DIR/keyring
run_dir = $DIR/run
crash_dir = $DIR/crash
# single OSD, no replication, small PG counts (RGW alone creates ~7 pools)
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_allow_pool_delete = true
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
# single mon: commit proposals faster (default 1s) -> quicker pool creation / osd boot
paxos_propose_interval = $PAXOS
# the test host's disk may be fuller than a real mon's would be
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon]
mon_data = $DIR/mon/\$cluster-\$id
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok

[mgr]
mgr_data = $DIR/mgr/\$cluster-\$id
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok
# only first-start modules; the always-on ones (balancer, crash, devicehealth,
# pg_autoscaler, progress, rbd_support, status, telemetry, volumes...) load anyway
mgr_initial_modules = iostat

[osd]
osd_data = $DIR/osd/\$id
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok
osd_objectstore = __OBJECTSTORE__
memstore_device_bytes = $(to_bytes "$OSD_SIZE")
# block file = \$osd_data/block (default path); do NOT set bluestore_block_path to that
# same path: mkfs then symlinks block -> itself (ELOOP, "Too many levels of symbolic links")
bluestore_block_size = $(to_bytes "$OSD_SIZE")
bluestore_block_create = true
bluestore_fsck_on_mkfs = false
bluestore_fsck_on_mount = false
osd_memory_target = 1073741824
osd_crush_update_on_start = true

[client.rgw.dev]
rgw_data = $DIR/rgw
log_file = $DIR/log/\$name.log
admin_socket = $DIR/run/\$name.asok
rgw_frontends = beast endpoint=127.0.0.1:$rgwport
rgw_dns_name = 127.0.0.1
rgw_thread_pool_size = 64
EOF
}

create_keys() {
  local kr="$DIR/keyring"
  ceph-authtool --create-keyring "$DIR/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool --create-keyring "$kr" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n mgr.x \
    --cap mon 'allow profile mgr' --cap osd 'allow *' --cap mds 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n osd.0 \
    --cap mon 'allow profile osd' --cap mgr 'allow profile osd' --cap osd 'allow *' >/dev/null
  ceph-authtool "$kr" --gen-key -n client.rgw.dev \
    --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw' >/dev/null
  # every key goes into the mon's initial auth database at mkfs: no `ceph auth add` later
  ceph-authtool "$DIR/mon.keyring" --import-keyring "$kr" >/dev/null
  chmod 600 "$kr" "$DIR/mon.keyring"
}

osd_epoch_up_from() {  # prints "<osdmap epoch> <osd.0 up> <osd.0 up_from>"
  C osd dump -f json | /usr/bin/python3 -c 'import json,sys
d=json.load(sys.stdin); o=[x for x in d["osds"] if x["osd"]==0]
print(d["epoch"], o[0]["up"] if o else 0, o[0]["up_from"] if o else 0)'
}
wait_osd_up_after() {  # osdmap epoch: wait until osd.0 is up from a later one
  wait_for "osd.0 up" sh -c "$(declare -f C osd_epoch_up_from); CONF='$CONF'; osd_epoch_up_from | awk -v e0=$1 '{exit !(\$2==1 && \$3>e0)}'"
}
wait_pools_active() {  # every pool's PGs serving reads (10s per try)
  local p
  for p in $(C osd pool ls); do wait_for "pool $p active" timeout 10 rados -c "$CONF" -p "$p" ls; done
}
start_osd_and_wait() {
  # after a restart the old osdmap may still say "up": wait for a boot newer than now
  local e0; e0="$(osd_epoch_up_from | awk '{print $1}')"
  if is_ours osd.0; then e0=-1; fi   # already running: "up" is enough
  start_daemon osd.0 ceph-osd -i 0
  wait_osd_up_after "$e0"
}
osd_mkfs() {  # objectstore
  local store="$1"
  sed -i "s/^osd_objectstore = .*/osd_objectstore = $store/" "$CONF"
  rm -rf "$DIR/osd/0"; mkdir -p "$DIR/osd/0"
  ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$(cat "$DIR/osd.uuid")" \
    >>"$DIR/log/osd.0.mkfs" 2>&1
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_ports() {
  local b
  if [ "$PORT_BASE" = auto ]; then
    for b in $(seq 13300 10 13990); do
      port_in_use "$b" || port_in_use $((b + 1)) || port_in_use $((b + 2)) || { PORT_BASE=$b; return 0; }
    done
    die "no free port base in 13300..13990"
  fi
  for b in "$PORT_BASE" $((PORT_BASE + 1)) $((PORT_BASE + 2)); do
    port_in_use "$b" && die "127.0.0.1:$b is already in use (another cluster? use --port-base auto)"
  done
  return 0
}

create_cluster() {
  local t fsid
  command -v ceph-mon >/dev/null || die "ceph-mon not installed (apt-get install ceph-mon ceph-mgr ceph-osd ceph-common radosgw)"
  pick_ports
  mkdir -p "$DIR"/{run,log,crash,mon,mgr,osd,rgw}
  fsid="$(new_uuid)"
  write_conf "$fsid"
  create_keys

  t=$(now)
  monmaptool --create --fsid "$fsid" \
    --addv a "[v2:127.0.0.1:$PORT_BASE,v1:127.0.0.1:$((PORT_BASE + 1))]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap" --keyring "$DIR/mon.keyring" \
    >"$DIR/log/mon.a.mkfs" 2>&1 || die "ceph-mon --mkfs failed: $(tail -5 "$DIR/log/mon.a.mkfs")"
  start_daemon mon.a ceph-mon -i a
  wait_for "mon quorum" C mon stat
  log "phase mon_up: $(elapsed "$t")s"

  t=$(now)
  start_daemon mgr.x ceph-mgr -i x
  # the OSD id must exist in the osdmap before ceph-osd --mkfs
  new_uuid >"$DIR/osd.uuid"
  local id; id="$(C osd new "$(cat "$DIR/osd.uuid")")"; [ "$id" = 0 ] || die "expected osd id 0, got '$id'"
  local store="$OBJECTSTORE"; [ "$store" = auto ] && store=memstore
  if ! osd_mkfs "$store"; then
    if [ "$OBJECTSTORE" = auto ]; then
      log "memstore mkfs failed (see log/osd.0.mkfs); falling back to bluestore on a sparse file"
      store=bluestore; osd_mkfs bluestore || die "bluestore mkfs failed: $(tail -5 "$DIR/log/osd.0.mkfs")"
    else die "$store mkfs failed: $(tail -5 "$DIR/log/osd.0.mkfs")"; fi
  fi
  echo "$store" >"$DIR/objectstore"
  start_osd_and_wait
  log "phase osd_up ($store): $(elapsed "$t")s"

  t=$(now)
  local p
  for p in $POOLS; do
    C osd pool create "$p" 8 8 >/dev/null 2>&1
    timeout "$TIMEOUT" rbd -c "$CONF" pool init "$p" || die "rbd pool init $p failed"
  done
  log "phase pool_ready ($POOLS): $(elapsed "$t")s"
  touch "$DIR/created"
}

start_rgw() {
  local t; t=$(now)
  local port=$((PORT_BASE + 2))
  start_daemon rgw radosgw -n client.rgw.dev
  # first start creates the .rgw.root / default.rgw.* pools; wait for HTTP
  wait_for "radosgw on 127.0.0.1:$port" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
  if [ ! -f "$DIR/rgw.user" ]; then
    local ak sk swk
    ak="$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)"
    sk="$(head -c 60 /dev/urandom | base64 -w0 | tr -d '/+=' | head -c 40)"
    swk="$(head -c 60 /dev/urandom | base64 -w0 | tr -d '/+=' | head -c 40)"
    radosgw-admin -c "$CONF" user create --uid=test --display-name="Test User" \
      --access-key="$ak" --secret-key="$sk" >/dev/null
    radosgw-admin -c "$CONF" subuser create --uid=test --subuser=test:swift \
      --access=full --key-type=swift --secret-key="$swk" >/dev/null
    printf '%s\n%s\n%s\n' "$ak" "$sk" "$swk" >"$DIR/rgw.user"
    chmod 600 "$DIR/rgw.user"
  fi
  log "phase rgw_ready: $(elapsed "$t")s"
}

# A radosgw beside the first, on the same pools and zone, that takes Keystone tokens
# instead of its own users: what a cloud's Swift endpoint behind Keystone is. Each
# project becomes a user of the same name (account AUTH_<project id>) on first use.
start_rgw_keystone() {
  [ -n "${KEYSTONE_URL:-}" ] && [ -n "${KS_RGW_PORT:-}" ] || die "rgw-keystone needs --keystone-url URL --port N"
  [ -f "$DIR/rgw.user" ] || die "$DIR has no radosgw yet (start it with --rgw first)"
  local t; t=$(now)
  signal_wait TERM rgw.keystone
  local kr="$DIR/rgw.keystone.keyring"
  [ -s "$kr" ] || C auth get-or-create client.rgw.keystone \
    mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$kr" >/dev/null
  mkdir -p "$DIR/rgw.keystone"
  start_daemon rgw.keystone radosgw -n client.rgw.keystone --keyring "$kr" \
    --rgw-data "$DIR/rgw.keystone" --log-file "$DIR/log/rgw.keystone.log" \
    --admin-socket "$DIR/run/rgw.keystone.asok" \
    --rgw-frontends "beast endpoint=127.0.0.1:$KS_RGW_PORT" --rgw-dns-name 127.0.0.1 \
    --rgw-keystone-url "$KEYSTONE_URL" --rgw-keystone-api-version 3 \
    --rgw-keystone-admin-user "${KEYSTONE_ADMIN_USER:-admin}" \
    --rgw-keystone-admin-password "${KEYSTONE_ADMIN_PASSWORD:-admin-pw}" \
    --rgw-keystone-admin-project "${KEYSTONE_ADMIN_PROJECT:-admin}" \
    --rgw-keystone-admin-domain Default \
    --rgw-keystone-accepted-roles "member,admin" \
    --rgw-keystone-implicit-tenants true \
    --rgw-keystone-verify-ssl false \
    --rgw-swift-account-in-url true
  wait_for "radosgw (Keystone) on 127.0.0.1:$KS_RGW_PORT" curl -sS -o /dev/null "http://127.0.0.1:$KS_RGW_PORT/"
  log "phase rgw_keystone_ready: $(elapsed "$t")s"
}

write_env() {
  local f="$DIR/env.sh"
  {
    echo "# source me: client environment for the dev cluster in $DIR"
    echo "export CEPH_CONF=$CONF"
    echo "export CEPH_KEYRING=$DIR/keyring   # informational: ceph.conf [global] keyring already points here"
    echo "export CEPH_USER=admin            # librados id (client.admin); rados_create2(..., \"client.admin\")"
    echo "export CEPH_FSID=$(awk '/^fsid/{print $3}' "$CONF")"
    echo "export CEPH_MON_HOST='$(awk -F' = ' '/^mon_host/{print $2}' "$CONF")'"
    echo "export CEPH_OBJECTSTORE=$(cat "$DIR/objectstore" 2>/dev/null || echo unknown)"
    if [ -f "$DIR/rgw.user" ]; then
      local port=$((PORT_BASE + 2)); local ak sk swk
      { read -r ak; read -r sk; read -r swk; } <"$DIR/rgw.user"
      echo "export S3_ENDPOINT=http://127.0.0.1:$port"
      echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
      echo "export AWS_ACCESS_KEY_ID=$ak"
      echo "export AWS_SECRET_ACCESS_KEY=$sk"
      echo "export AWS_DEFAULT_REGION=us-east-1   # any; RGW's default zonegroup is 'default'"
      echo "export SWIFT_AUTH_URL=http://127.0.0.1:$port/auth/1.0"
      echo "export ST_AUTH=http://127.0.0.1:$port/auth/1.0"
      echo "export ST_USER=test:swift"
      echo "export ST_KEY=$swk"
    fi
  } >"$f"
}

case "$cmd" in
  start)
    install_packages
    T0=$(now)
    if [ -f "$DIR/created" ] && [ "$(cat "$DIR/objectstore" 2>/dev/null)" = memstore ] && ! is_ours osd.0; then
      # memstore keeps everything in the OSD's RAM: once the OSD is gone so is the data,
      # and a restarted OSD would come up empty (all PGs unknown). Start over instead.
      log "memstore cluster in $DIR was stopped: its data is gone; recreating it from scratch"
      PORT_BASE="$(sed -n 's/^mon_host = \[v2:127.0.0.1:\([0-9]*\),.*/\1/p' "$CONF")"
      [ -f "$DIR/rgw.user" ] && RGW=1
      stop_all KILL
      grep -q 'generated by ceph-dev.sh' "$CONF" || die "$CONF not ours"
      find "$DIR" -mindepth 1 -delete
    fi
    if [ -f "$DIR/created" ]; then
      # restart whatever is not running; port base comes from the existing conf
      PORT_BASE="$(sed -n 's/^mon_host = \[v2:127.0.0.1:\([0-9]*\),.*/\1/p' "$CONF")"
      t=$(now)
      start_daemon mon.a ceph-mon -i a; wait_for "mon quorum" C mon stat
      start_daemon mgr.x ceph-mgr -i x
      start_osd_and_wait
      wait_pools_active  # reads need an active PG
      log "phase restart mon+mgr+osd: $(elapsed "$t")s"
      if [ "$RGW" = 1 ] || [ -f "$DIR/rgw.user" ]; then start_rgw; fi
    else
      [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty and holds no cluster; use an empty or new directory"
      CLEANUP_ON_DIE=1
      create_cluster
      if [ "$RGW" = 1 ]; then start_rgw; fi
    fi
    # the mgr is not on the RBD/RGW data path, but health and `ceph -s` PG stats need it;
    # waiting for it last lets its ~4s python start-up overlap the other phases
    t=$(now)
    wait_for "mgr active" sh -c "ceph -c '$CONF' --connect-timeout 10 mgr stat | grep -q '\"available\": true'"
    log "phase mgr_active (extra wait): $(elapsed "$t")s"
    write_env
    log "cluster ready in $(elapsed "$T0")s; health: $(C health 2>&1 | head -1)"
    print_env
    ;;
  stop)
    signal_only CONT $DAEMONS_STOP_ORDER  # a frozen daemon cannot take TERM
    stop_all TERM
    ;;
  kill)
    stop_all KILL
    ;;
  freeze) signal_only STOP $DAEMONS_STOP_ORDER ;;
  thaw)
    signal_only CONT $DAEMONS_STOP_ORDER
    # back only once it answers: a quorum, and every pool's PGs serving again
    wait_for "mon quorum" C mon stat
    # A lone OSD paused past its PGs' read leases can leave them `laggy` for good, every
    # op parked until the next interval (Ceph tracker 80404): marking it down starts one.
    for p in $(C osd pool ls); do
      if ! timeout 10 rados -c "$CONF" -p "$p" ls >/dev/null 2>&1; then
        log "pool $p does not answer after the thaw (laggy PGs?): marking osd.0 down for a new interval"
        e0="$(osd_epoch_up_from | awk '{print $1}')"
        C osd down 0 >/dev/null 2>&1 || true
        wait_osd_up_after "$e0"
        break
      fi
    done
    wait_pools_active
    ;;
  destroy)
    stop_all KILL
    # refuse to delete anything that does not look like our cluster dir
    if [ -f "$CONF" ] && grep -q 'generated by ceph-dev.sh' "$CONF"; then rm -rf "$DIR"
    elif [ -z "$(ls -A "$DIR")" ]; then rmdir "$DIR"
    else die "$DIR does not look like a ceph-dev.sh cluster dir; not deleting"; fi
    ;;
  status)
    for d in $DAEMONS_STOP_ORDER; do
      if is_ours "$d"; then echo "$d: running pid $(cat "$(pidfile "$d")")"; else echo "$d: stopped"; fi
    done
    C -s || true
    ;;
  env) print_env ;;
  rgw-keystone) start_rgw_keystone ;;
  *) die "unknown command '$cmd' (start|stop|kill|freeze|thaw|destroy|status|env|rgw-keystone)" ;;
esac
