#!/bin/bash
# make install DESTDIR=... puts the binaries, the systemd units (with the configured paths
# in them), the man pages, the bash completions and the examples where configure said, and
# make uninstall takes every one of them away again. Runs make in the build tree, so the
# units and man pages come from this build.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
[ -f "$top_builddir/Makefile" ] || { echo "install.sh: error: no Makefile in $top_builddir (run configure)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/meshd-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }

# The configured directories, as make expands them (prefix, sbindir, ...).
mkvar() {
	# shellcheck disable=SC2016 # $(...) is make's, not the shell's
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$top_builddir" --no-print-directory \
		-f Makefile -f - print-var VAR="$1" <<<'print-var: ; @echo $($(VAR))' | tail -n 1
}
# make in the build tree, on its own: not part of the make check that runs us (no jobserver).
run_make() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -C "$top_builddir" --no-print-directory "$@" >"$tmp/make.log" 2>&1
}

sbindir=$(mkvar sbindir)
unitdir=$(mkvar systemdsystemunitdir)
mandir=$(mkvar mandir)
compdir=$(mkvar bashcompletiondir)
docdir=$(mkvar docdir)
if [ -z "$sbindir" ] || [ -z "$mandir" ] || [ -z "$docdir" ]; then
	not_ok "make prints the configured directories"
	exit 1
fi

expected=("$sbindir/meshd" "$sbindir/meshcoord"
	"$mandir/man8/meshd.8" "$mandir/man8/meshcoord.8" "$mandir/man5/meshd.yaml.5" "$mandir/man5/meshcoord.yaml.5"
	"$docdir/meshd.yaml" "$docdir/meshcoord.yaml" "$docdir/meshd-static.yaml" "$docdir/meshd-coordinator.yaml")
[ "$unitdir" != no ] && expected+=("$unitdir/meshd@.service" "$unitdir/meshcoord.service")
[ "$compdir" != no ] && expected+=("$compdir/meshd" "$compdir/meshcoord")

if run_make install DESTDIR="$dest"; then
	ok "make install DESTDIR=... exits 0"
else
	not_ok "make install DESTDIR=... exits 0"
	sed 's/^/# /' "$tmp/make.log" | tail -n 20
	exit 1
fi
missing=
for f in "${expected[@]}"; do
	[ -s "$dest$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then
	ok "installed: ${expected[*]}"
else
	not_ok "not installed:$missing"
fi

if [ "$unitdir" != no ]; then
	for unit in meshd@.service meshcoord.service; do
		exec_start=$(sed -n 's/^ExecStart=//p' "$dest$unitdir/$unit" 2>/dev/null)
		case $exec_start in
		"$sbindir"/mesh*) ok "$unit: ExecStart=$exec_start (the configured sbindir)" ;;
		*) not_ok "$unit: ExecStart='$exec_start' should start with $sbindir" ;;
		esac
		if grep -q '@[a-z]*@' "$dest$unitdir/$unit"; then
			not_ok "$unit still holds a template variable: $(grep -o '@[a-z]*@' "$dest$unitdir/$unit" | head -n 1)"
		else
			ok "$unit has no template variable left"
		fi
		if grep -q '^Type=notify$' "$dest$unitdir/$unit" && grep -q '^WatchdogSec=' "$dest$unitdir/$unit"; then
			ok "$unit: Type=notify with WatchdogSec="
		else
			not_ok "$unit: Type=notify with WatchdogSec="
		fi
	done
fi
if command -v man >/dev/null 2>&1; then
	if MANWIDTH=80 man -l "$dest$mandir/man8/meshd.8" 2>/dev/null | grep -q 'check-config'; then
		ok "man -l renders the installed meshd(8)"
	else
		not_ok "man -l renders the installed meshd(8)"
	fi
fi

if run_make uninstall DESTDIR="$dest"; then
	ok "make uninstall DESTDIR=... exits 0"
else
	not_ok "make uninstall DESTDIR=... exits 0"
	sed 's/^/# /' "$tmp/make.log" | tail -n 20
fi
left=$(find "$dest" -type f 2>/dev/null)
if [ -z "$left" ]; then
	ok "make uninstall removed every file"
else
	not_ok "make uninstall left: ${left//$'\n'/ }"
fi
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
