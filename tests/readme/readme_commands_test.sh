#!/usr/bin/env bash
# Runs every command the README shows, so the README cannot rot.
#
# Fenced blocks marked ```sh are executed verbatim, in order, in one bash session
# (set -e: any failing command fails the test) against a private bus with the project's
# policy, a fresh svmkeyd and real Keystone + Barbican ($SVMKEY_KMS_ENV, or started here).
# Blocks marked ```sh no-run are exercised here too, in the form a test can run: the
# install block as `meson install` into a DESTDIR plus the unit check, tools/demo with
# 1,000 volumes; tools/check is what CI itself runs.
#
#   readme_commands_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$(cd "$1" && pwd)
build=$(cd "$2" && pwd)
scratch=$(mktemp -d /tmp/svmkey-readme.XXXXXX)
chmod 0755 "$scratch"
bus_pid="" daemon_pid="" own_kms=""
cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null
  [ -n "$own_kms" ] && "$src/tools/barbican-down" "$own_kms" >/dev/null 2>&1
  rm -rf "$scratch"
}
trap cleanup EXIT
fail() { echo "README TEST FAILED: $*" >&2; exit 1; }

# 1. Extract the blocks.
/usr/bin/python3 - "$src/README.md" "$scratch" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```([^\n]*)\n(.*?)^```", text, re.S | re.M)
run = [b for info, b in blocks if info.strip() == "sh"]
norun = [b for info, b in blocks if info.strip() == "sh no-run"]
open(sys.argv[2] + "/run.sh", "w").write("\n".join(run))
open(sys.argv[2] + "/norun.sh", "w").write("\n".join(norun))
print(f"README: {len(run)} blocks to run, {len(norun)} no-run blocks")
PY
grep -q "tools/demo" "$scratch/norun.sh" || fail "the README no longer shows tools/demo"
grep -q "tools/check" "$scratch/norun.sh" || fail "the README no longer shows tools/check"
grep -q "meson install" "$scratch/norun.sh" || fail "the install block is gone"

# 2. Services: KMS, private bus, svmkeyd.
if [ -n "${SVMKEY_KMS_ENV:-}" ] && [ -f "$SVMKEY_KMS_ENV" ]; then
  kms_env=$SVMKEY_KMS_ENV
else
  own_kms="$scratch/kms"
  free_port() { local p; for p in $(shuf -i 20000-60000 -n 50); do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }; done; }
  SKIP_INSTALL=1 "$src/tools/barbican-up" "$own_kms" "$(free_port)" "$(free_port)" >/dev/null \
    || fail "cannot start Keystone + Barbican"
  kms_env="$own_kms/env"
fi
set -a; . "$kms_env"; set +a
sed -e "s|@SOCKET@|$scratch/bus.sock|" -e "s|@POLICY@|$src/ipc/org.svmkey.KeyManager1.conf|" \
  "$src/tools/lib/private-bus.conf.in" > "$scratch/bus.conf"
exec 5< <(dbus-daemon --nofork --nopidfile --nosyslog --config-file="$scratch/bus.conf" --print-address=1 --print-pid=1 2>"$scratch/bus.log")
read -r BUS <&5 || fail "dbus-daemon did not start"
read -r bus_pid <&5
DBUS_SYSTEM_BUS_ADDRESS="$BUS" "$build/daemon/svmkeyd" --state-dir "$scratch/state" --volume-root "$scratch/volumes" --volume-set-root "$scratch" 2>"$scratch/svmkeyd.log" &
daemon_pid=$!
for _ in $(seq 100); do
  busctl --address="$BUS" status org.svmkey.KeyManager1 >/dev/null 2>&1 && break
  sleep 0.1
done

# 3. The ```sh blocks, verbatim, in one shell.
umask 077
printf '%s' "$APP_CRED_SECRET" > "$scratch/secret"
umask 022
export BUS KEY_ID="$BARBICAN_KEY_ID" KEYSTONE_URL APP_CRED_ID CA_FILE SECRET_FILE="$scratch/secret" SCRATCH="$scratch"
export PATH="$build/tools/ctl:$build/tools/volset:$build/tools/bench:$PATH"
(cd "$src" && bash -euo pipefail -x "$scratch/run.sh") > "$scratch/run.log" 2>&1 || {
  tail -40 "$scratch/run.log" >&2; tail -20 "$scratch/svmkeyd.log" >&2; fail "a README command failed"; }
grep -q "us 202" "$scratch/run.log" || fail "RekeyInternal with return_timeout 0 did not answer 202"
grep -q "us 201" "$scratch/run.log" || fail "RekeyInternal with return_timeout 120 did not answer 201"
grep -q "succeeded: Complete: Successful" "$scratch/run.log" || fail "svmkeyctl rekey-internal did not succeed"
! grep -q -- "$APP_CRED_SECRET" "$scratch/run.log" "$scratch/svmkeyd.log" || fail "the secret leaked into output"
echo "README sh blocks: all $(grep -c '^+ ' "$scratch/run.log") commands ran"

# 4. The ```sh no-run blocks, in the form a test can run.
#    Install: meson install into a DESTDIR; the files the README names must be there.
DESTDIR="$scratch/root" meson install -C "$build" --no-rebuild >/dev/null
for f in usr/local/sbin/svmkeyd usr/local/bin/svmkeyctl usr/local/bin/svmkey-volset \
         usr/local/lib/systemd/system/svmkeyd.service \
         usr/local/share/dbus-1/system.d/org.svmkey.KeyManager1.conf \
         usr/local/share/dbus-1/system-services/org.svmkey.KeyManager1.service; do
  [ -e "$scratch/root/$f" ] || fail "meson install did not install $f"
done
#    The demo, smaller (its own services, ports and scratch directory).
kill "$daemon_pid"; wait "$daemon_pid" 2>/dev/null || true; daemon_pid=""
SVMKEY_DEMO_VOLUMES=1000 "$src/tools/demo" > "$scratch/demo.log" 2>&1 || { tail -30 "$scratch/demo.log" >&2; fail "tools/demo failed"; }
grep -q "SVM-KEK generation: 1 -> 2" "$scratch/demo.log" || fail "tools/demo did not rotate the key"
echo "README no-run blocks: install into DESTDIR and tools/demo (1,000 volumes) passed"
