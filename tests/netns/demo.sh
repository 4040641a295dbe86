#!/bin/bash
# contrib/demo.sh, the README's first command, run as a test with this build's binaries:
#
#   VPS (meshcoord, 203.0.113.10)            all on the demo's "internet" bridge
#   home   10.1.0.2 behind a cone NAT        meshd, python3 -m http.server on its overlay address
#   laptop 10.2.0.2 behind a symmetric NAT   meshd, fetches the page
#   phone  10.3.0.2 behind a UDP-blocking NAT meshd, fetches the page (relay over TCP)
#
# Checks: it exits 0 within two minutes; the laptop and the phone each fetched the page
# (HTTP 200); it printed `meshd status` of each node; the path it reports for each pair is
# the one the NAT types allow (home<->laptop punched, the phone's two pairs relayed, the
# phone over TCP) with its reason; and nothing is left behind: no namespace of the demo, no
# process it started, no interface in our namespace, no temp file.
#
# Needs root, /dev/net/tun, iproute2, nftables, conntrack, python3 (exits 77 = SKIP otherwise).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/natlab.sh"

lib_require_root
lib_require_tun
# What the demo needs: without it the demo fails (exit 1); here that is a SKIP.
natlab_require
lib_require_cmd ping iputils-ping
lib_require_cmd unshare util-linux
lib_require_cmd python3 python3
lib_find_meshd
lib_find_meshcoord
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
DEMO=$top_srcdir/contrib/demo.sh
[ -x "$DEMO" ] || lib_die "$DEMO not found or not executable"

lib_mktemp
lib_trap_cleanup
# The demo's temp dir goes in here (TMPDIR): every process it starts names a file in it on
# its command line, and the dir must be empty after.
DEMO_TMP=$LIB_TMPDIR/tmp
mkdir "$DEMO_TMP"
OUT=$LIB_TMPDIR/demo.out
# The demo's own bound is two minutes; timeout ends it (and its cleanup runs) if it hangs.
LIMIT_S=120

links() {
	ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort
}
links_before=$(links)

started=$(lib_now_ms)
TMPDIR=$DEMO_TMP MESHD=$MESHD MESHCOORD=$MESHCOORD timeout "$((LIMIT_S + 20))" "$DEMO" </dev/null >"$OUT" 2>&1 &
DEMO_PID=$!
lib_track_pid "$DEMO_PID"
# In the background and waited for, so that a signal to this test runs its cleanup at once.
wait "$DEMO_PID"
rc=$?
lib_untrack_pid "$DEMO_PID"
ms=$(($(lib_now_ms) - started))
sed 's/^/# | /' "$OUT"

lib_check "the demo exits 0 (exit $rc)" [ "$rc" -eq 0 ]
lib_check "the demo ends within two minutes ($ms ms)" [ "$ms" -lt $((LIMIT_S * 1000)) ]
lib_check "it says its own total time" grep -q 'Total time [0-9.]* s\.' "$OUT"

for n in laptop phone; do
	lib_check "the $n fetched the home server's page by its overlay address (HTTP 200)" \
		grep -Eq "^   $n +fetched http://100\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\.[0-9.]+:8080/ +HTTP 200 in [0-9]+ ms: \"Hello from the home server\"" "$OUT"
done
for n in home laptop phone; do
	lib_check "meshd status of $n is shown" grep -q "^   node $n on mesh0" "$OUT"
done

# home<->laptop: a cone and a symmetric NAT meet by a birthday punch. It succeeds ~98% of the
# time (nat-traversal.sh measures its rate and waits 60 s for no retry): a miss is accepted
# only if the demo says so rather than pretending.
if grep -Eq '^   home <-> laptop +punched +home sends to 203\.0\.113\.22:[0-9]+, laptop to 203\.0\.113\.21:[0-9]+' "$OUT" &&
	grep -q 'Birthday punch: laptop opened 256 ports toward home' "$OUT"; then
	lib_ok "home <-> laptop: punched (birthday punch), with its reason"
elif grep -Eq '^   home <-> laptop +relay' "$OUT" && grep -q 'the punch did not find a path in time this run' "$OUT"; then
	lib_ok "home <-> laptop: relayed, and the demo says the punch missed this run (accepted: ~2% of runs)"
else
	lib_not_ok "home <-> laptop: punched, with its reason"
fi
for a in home laptop; do
	lib_check "$a <-> phone: relayed, the phone over TCP, with its reason" \
		grep -Eq "^   $a <-> phone +relay +$a reaches the relay over UDP, phone over TCP" "$OUT"
done
lib_check "the phone's reason: its network drops all UDP (netcheck: no-udp)" \
	grep -q "phone's network drops all UDP (netcheck: no-udp)" "$OUT"

# ---- nothing left behind
id=$(sed -n "s/^   (namespaces \(demo[0-9]*\)-\*: .*/\1/p" "$OUT" | head -n 1)
lib_check "the demo named its namespaces (${id:-none})" [ -n "$id" ]
left=$(ip netns list | awk '{ print $1 }' | grep -c "^${id:-demo-unknown}-")
lib_check "no namespace of the demo is left ($left)" [ "$left" -eq 0 ]
# Every process the demo starts has a file of its temp dir on its command line.
procs=
for f in /proc/[0-9]*/cmdline; do
	# (braces: a process that ended meanwhile makes the redirection itself fail)
	c=$({ tr '\0' ' ' <"$f"; } 2>/dev/null) || continue
	case $c in *"$DEMO_TMP"*) p=${f#/proc/} && procs="$procs${procs:+ }${p%/cmdline}" ;; esac
done
lib_check "no process the demo started is left (${procs:-none})" [ -z "$procs" ]
new_links=$(comm -13 <(echo "$links_before") <(links) | tr '\n' ' ')
lib_check "no interface created in the caller's namespace (${new_links:-none})" [ -z "$new_links" ]
files=$(find "$DEMO_TMP" -mindepth 1 | head -n 5 | tr '\n' ' ')
lib_check "no temp file left (${files:-none})" [ -z "$files" ]

lib_summary
