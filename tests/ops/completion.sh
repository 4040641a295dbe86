#!/bin/bash
# The bash completions (contrib/completion/): sourced into this shell, driven the way bash
# drives them (COMP_WORDS, COMP_CWORD, then the function 'complete -p' names), with a
# stand-in meshd whose 'status --json' lists two peers and a stand-in meshcoord whose
# 'nodes list' lists two nodes.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/meshd-completion.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }

# The JSON shape of 'meshd status --json'; it records its arguments, so the test sees
# which daemon the completion asked.
cat >"$tmp/meshd" <<'STUB'
#!/bin/sh
echo "$*" >"${0%/*}/meshd.args"
[ "$1 $2" = "status --json" ] || exit 2
echo '{"node": {"name": "home", "interface": "mesh0"}, "peers": [{"name": "laptop", "addresses": ["100.64.0.2"], "path": "direct 192.0.2.2:51820"}, {"name": "phone-1", "addresses": ["100.64.0.3"], "path": "relay"}]}'
STUB
cat >"$tmp/meshcoord" <<'STUB'
#!/bin/sh
echo "$*" >"${0%/*}/meshcoord.args"
[ "$1 $2" = "nodes list" ] || exit 2
printf 'NAME     IPV4        IPV6  ONLINE LAST SEEN  ENDPOINTS TAGS\n'
printf 'alpha    100.64.0.1  -     yes    -          -         tag:web,tag:db\nbeta     100.64.0.2  -     no     -          -         tag:ops\n'
STUB
chmod +x "$tmp/meshd" "$tmp/meshcoord"

# shellcheck source=/dev/null
. "$top_srcdir/contrib/completion/meshd" || not_ok "contrib/completion/meshd sources"
# shellcheck source=/dev/null
. "$top_srcdir/contrib/completion/meshcoord" || not_ok "contrib/completion/meshcoord sources"

# completes EXPECTED WORDS...: the last word is the one being completed; EXPECTED is the
# sorted, space-separated candidates.
completes() {
	local expected=$1 fn got
	shift
	COMP_WORDS=("$@")
	COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	fn=$(complete -p "${1##*/}" 2>/dev/null | sed -n 's/.*-F \([^ ]*\) .*/\1/p')
	if [ -z "$fn" ]; then
		not_ok "'complete -p ${1##*/}' names a function"
		return
	fi
	"$fn" "${1##*/}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" = "$expected" ]; then
		ok "'$*<TAB>' -> $got"
	else
		not_ok "'$*<TAB>' -> '$got', expected '$expected'"
	fi
}

completes "check-config" meshd ch
completes "netcheck" meshd net
completes "--json" meshd status --j
completes "--interface" meshd status --inter
completes "--config" meshd up --con
completes "debug" meshd up -c x.yaml --log-level d
completes "laptop phone-1" "$tmp/meshd" ping ""
completes "phone-1" "$tmp/meshd" ping -s /run/x.sock ph
if [ "$(cat "$tmp/meshd.args" 2>/dev/null)" = "status --json -s /run/x.sock" ]; then
	ok "peer names come from the daemon named on the line (status --json -s /run/x.sock)"
else
	not_ok "peer names from the daemon named on the line: asked '$(cat "$tmp/meshd.args" 2>/dev/null)'"
fi
completes "--count" meshd ping --cou

completes "authkey" meshcoord au
completes "create list revoke" meshcoord authkey ""
completes "list remove tag untag" meshcoord nodes ""
completes "--max-uses" meshcoord authkey create --max
completes "alpha beta" "$tmp/meshcoord" nodes remove ""
completes "beta" "$tmp/meshcoord" nodes -c /etc/m.yaml remove b
if [ "$(cat "$tmp/meshcoord.args" 2>/dev/null)" = "nodes list -c /etc/m.yaml" ]; then
	ok "node names come from the registry of the config named on the line (nodes list -c /etc/m.yaml)"
else
	not_ok "node names from the config named on the line: asked '$(cat "$tmp/meshcoord.args" 2>/dev/null)'"
fi
completes "alpha beta" "$tmp/meshcoord" nodes tag ""
completes "tag:db tag:ops tag:web" "$tmp/meshcoord" nodes tag alpha ""
completes "tag:db tag:web" "$tmp/meshcoord" nodes untag alpha ""
completes "tag:web" "$tmp/meshcoord" nodes untag alpha tag:db tag:w
completes "--log-level" meshcoord serve --log
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
