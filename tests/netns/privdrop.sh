#!/bin/bash
# Privilege drop (issue 8): a node configured with `user: nobody` opens what needs root, then
# runs as that user with CAP_NET_ADMIN alone (permitted, effective and bounding set) and
# no_new_privs; the tunnel works; and at SIGTERM it still removes its interface (rtnetlink:
# the one capability it kept) and exits 0. A config naming an unknown user is refused.
# meshcoord needs no privilege at all (its ports are above 1024): started as nobody with no
# capabilities (setpriv, as contrib/systemd/meshcoord.service.in's DynamicUser does), it serves
# a node that joins.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_find_meshd
lib_mktemp
lib_trap_cleanup

NS_A=pdA-$$
NS_B=pdB-$$
T=$LIB_TMPDIR
IFACE=mesh0
PORT=51820
DROP_USER=nobody
CAP_NET_ADMIN_ONLY=0000000000001000 # bit 12

id "$DROP_USER" >/dev/null 2>&1 || lib_die "user $DROP_USER missing (Debian has it)"
drop_uid=$(id -u "$DROP_USER")

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA 192.0.2.1/24 "$NS_B" vethB 192.0.2.2/24
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" "$IFACE" "$T/a.key" "$PORT" 100.64.0.1/10 b "$(cat "$T/b.pub")" 192.0.2.2:$PORT 100.64.0.2/32
echo "user: $DROP_USER" >>"$T/a.yaml"
lib_write_config "$T/b.yaml" "$IFACE" "$T/b.key" "$PORT" 100.64.0.2/10 a "$(cat "$T/a.pub")" 192.0.2.1:$PORT 100.64.0.1/32
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log" info
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log" info
lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" && lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE" &&
	lib_wait_for 10 grep -q "running as user $DROP_USER" "$T/a.log"

status_field_of() { awk -v f="$2:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status"; }
status_field() { status_field_of "$PID_A" "$1"; }
uids=$(status_field Uid)
lib_check "A runs as $DROP_USER (uid $drop_uid): real, effective, saved, fs uids '$uids'" \
	test "$uids" = "$drop_uid $drop_uid $drop_uid $drop_uid"
groups=$(status_field Groups)
lib_check "A has no supplementary groups ('$groups')" test -z "$groups"
for f in CapPrm CapEff CapBnd; do
	v=$(status_field "$f")
	lib_check "A's $f is CAP_NET_ADMIN alone ($v)" test "$v" = "$CAP_NET_ADMIN_ONLY"
done
lib_check "A's inheritable and ambient sets are empty" \
	test "$(status_field CapInh)" = 0000000000000000 -a "$(status_field CapAmb)" = 0000000000000000
lib_check "A has no_new_privs" test "$(status_field NoNewPrivs)" = 1
lib_check "the tunnel works: A pings B" lib_wait_for 10 lib_ping "$NS_A" 100.64.0.2
lib_check "and B pings A" lib_wait_for 10 lib_ping "$NS_B" 100.64.0.1
lib_stop_pid "$PID_A"
rc=$?
lib_check "A exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0
lib_check "A's interface is gone (removed by rtnetlink with the capability it kept)" lib_link_absent "$NS_A" "$IFACE"

# An unknown user: refused at start with one line naming it.
sed "s/^user: .*/user: no-such-meshd-user/" "$T/a.yaml" >"$T/a-bad.yaml"
lib_meshd_start PID_BAD "$NS_A" "$T/a-bad.yaml" "$T/a-bad.log" info
rc=
if lib_wait_exit rc "$PID_BAD" 10 && [ "$rc" -eq 1 ] && grep -q "user 'no-such-meshd-user': no such user" "$T/a-bad.log"; then
	lib_ok "an unknown user is refused: '$(grep -m 1 "no such user" "$T/a-bad.log" | sed 's/.*user /user /' | cut -c1-90)'"
else
	lib_not_ok "an unknown user is refused with exit 1 and a clear line (exit ${rc:-none})"
	tail -n 5 "$T/a-bad.log" | sed 's/^/# /'
fi
lib_check "and leaves no interface behind" lib_link_absent "$NS_A" "$IFACE"

# ---------------------------------------------------------------- meshcoord as nobody
lib_require_cmd setpriv util-linux
lib_find_meshcoord
drop_gid=$(id -g "$DROP_USER")
# Its config and state in a directory of its own that nobody owns; the temp dir above only
# lets it through (o+x), as /etc and /var/lib would.
chmod o+x "$T"
mkdir -p "$T/coord" && CONF=$T/coord/coord.yaml
lib_coord_write_config "$CONF" "192.0.2.2:51821" "192.0.2.2:3478" "192.0.2.2:51821" "$T/coord/state"
KEY=$(lib_coord_authkey "$CONF") # as root, as an operator would (creates key and registry)
chown -R "$drop_uid:$drop_gid" "$T/coord"
ip netns exec "$NS_B" setpriv --reuid "$drop_uid" --regid "$drop_gid" --clear-groups --inh-caps=-all \
	--bounding-set=-all --no-new-privs env -u JOURNAL_STREAM "$MESHCOORD" serve -c "$CONF" </dev/null >>"$T/coord.log" 2>&1 &
COORD_PID=$!
lib_track_pid "$COORD_PID"
if lib_coord_wait_up "$COORD_PID" "$NS_B" 51821; then
	lib_check "meshcoord runs as $DROP_USER ($(status_field_of "$COORD_PID" Uid))" \
		test "$(status_field_of "$COORD_PID" Uid)" = "$drop_uid $drop_uid $drop_uid $drop_uid"
	lib_check "with no capabilities at all (CapEff $(status_field_of "$COORD_PID" CapEff))" \
		test "$(status_field_of "$COORD_PID" CapEff)" = 0000000000000000
	mkdir -p "$T/j" && chmod 700 "$T/j"
	printf 'interface: mesh1\nlisten_port: 0\nstate_dir: %s\ncontrol_socket: %s\n' "$T/j" "$T/j.sock" >"$T/j.yaml"
	lib_meshd_start_args PID_J "$NS_A" j "$T/j.yaml" "$T/j.log" info --join "$KEY"
	lib_check "a node joins it (registered within 10 s)" lib_wait_for 10 grep -q "registered with coordinator" "$T/j.log"
	lib_stop_pid "$PID_J"
else
	lib_not_ok "meshcoord starts as $DROP_USER with no capabilities"
	tail -n 10 "$T/coord.log" | sed 's/^/# /'
fi
lib_stop_pid "$COORD_PID"

[ "$LIB_FAILED" -eq 0 ] || tail -n 20 "$T/a.log" | sed 's/^/# a.log: /'
lib_summary
