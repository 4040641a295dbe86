#!/bin/bash
# The man pages and completions say what the programs do. Every command, action and option
# that 'meshd --help' and 'meshcoord --help' print (and each command's own --help) must be
# in the program's man page (docs/man/PROG.8.scd) and its bash completion
# (contrib/completion/PROG), and every key the config parsers accept must be described in
# docs/man/PROG.yaml.5.scd. The keys come from the parsers themselves: 'check-config' on
# a file with an unknown key prints the keys it accepts. A new option or key without docs
# fails here, naming what to document.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
MESHD=${MESHD:-$top_builddir/src/meshd/meshd}
MESHCOORD=${MESHCOORD:-$top_builddir/coord/meshcoord}
for b in "$MESHD" "$MESHCOORD"; do
	[ -x "$b" ] || { echo "docs.sh: error: $b not built (run make)" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/meshd-docs.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }

# bold PAGE TEXT: TEXT appears in bold (*TEXT*, or *TEXT ... in a synopsis) in the source.
in_page() {
	grep -qF -e "*$2*" -e "*$2 " "$1"
}

# The commands of a top-level --help: the first word of each line of its "Commands:"
# section, plus the second when it is an action ("authkey create"); the description
# starts after a run of spaces.
commands_of() {
	sed -n '/^Commands:/,/^$/p' | grep -E '^  [a-z]' | sed -E 's/^  //; s/  .*//' |
		awk '{ if ($2 ~ /^[a-z]+$/) print $1 " " $2; else print $1 }'
}

# Every option token of a help text: -x or --long-name after a space, bracket, comma, pipe
# or quote; not those of the other program quoted in it ('meshd up --join KEY').
options_of() {
	sed -E "s/'(meshd|meshcoord) [^']*'//g" | grep -oE "(^|[][ (,|'])--?[a-zA-Z][a-zA-Z-]*" |
		sed -E "s/^[][ (,|']//" | sort -u
}

check_program() {
	local prog=$1 bin=$2 page=$top_srcdir/docs/man/$1.8.scd comp=$top_srcdir/contrib/completion/$1
	local help=$tmp/$prog.help cmds line cmd missing=''
	"$bin" --help >"$help" || { not_ok "$prog --help exits 0"; return; }
	cmds=$(commands_of <"$help")
	[ -n "$cmds" ] || { not_ok "$prog --help lists commands"; return; }
	while read -r line; do
		cmd=${line%% *}
		in_page "$page" "$line" || in_page "$page" "$prog $line" || missing="$missing '$line'"
		grep -qw -e "$cmd" "$comp" || missing="$missing '$cmd'(completion)"
		case $line in *" "*) grep -qw -e "${line#* }" "$comp" || missing="$missing '$line'(completion)" ;; esac
		# the command's own help, when it has one
		"$bin" "$cmd" --help >>"$help" 2>/dev/null
	done <<<"$cmds"
	if [ -z "$missing" ]; then
		ok "$prog: every command of --help is in $prog(8) and its completion ($(echo "$cmds" | tr '\n' ',' | sed 's/,$//'))"
	else
		not_ok "$prog: commands missing from docs/man/$prog.8.scd or contrib/completion/$prog:$missing"
	fi
	local opts opt missing_page='' missing_comp=''
	opts=$(options_of <"$help")
	for opt in $opts; do
		in_page "$page" "$opt" || missing_page="$missing_page $opt"
		grep -qF -e " $opt " -e " $opt\"" -e "\"$opt " -e "$opt |" -e "| $opt)" -e "$opt)" "$comp" ||
			missing_comp="$missing_comp $opt"
	done
	if [ -z "$missing_page" ]; then
		ok "$prog: every option of the help texts is in $prog(8) (${opts//$'\n'/ })"
	else
		not_ok "$prog: options missing from docs/man/$prog.8.scd (write them in bold, *--opt*):$missing_page"
	fi
	if [ -z "$missing_comp" ]; then
		ok "$prog: every option is in contrib/completion/$prog"
	else
		not_ok "$prog: options missing from contrib/completion/$prog:$missing_comp"
	fi
}

# keys_of BIN YAML: the keys the parser accepts where YAML puts the unknown key 'zz_probe',
# from its refusal "... (expected one of: a, b, c)".
keys_of() {
	printf '%s' "$2" >"$tmp/probe.yaml"
	"$1" check-config -c "$tmp/probe.yaml" 2>&1 | sed -n "s/.*unknown .*key 'zz_probe' (expected one of: \(.*\))\$/\1/p" | tr -d ',' | tr ' ' '\n'
}

check_keys() {
	local what=$1 bin=$2 page=$3 yaml=$4 keys key missing=''
	keys=$(keys_of "$bin" "$yaml")
	if [ -z "$keys" ]; then
		not_ok "$what: the parser lists the keys it accepts (check-config on an unknown key)"
		return
	fi
	for key in $keys; do
		grep -qF "*$key:*" "$top_srcdir/docs/man/$page" || missing="$missing $key"
	done
	if [ -z "$missing" ]; then
		ok "$what: every key is described in $page (${keys//$'\n'/ })"
	else
		not_ok "$what: keys missing from docs/man/$page (write them as *key:* _VALUE_):$missing"
	fi
}

check_program meshd "$MESHD"
check_program meshcoord "$MESHCOORD"
check_keys "meshd.yaml" "$MESHD" meshd.yaml.5.scd 'zz_probe: 1
'
check_keys "meshd.yaml peers" "$MESHD" meshd.yaml.5.scd 'address: 100.64.0.1/10
private_key_file: x
peers:
  - zz_probe: 1
'
check_keys "meshcoord.yaml" "$MESHCOORD" meshcoord.yaml.5.scd 'zz_probe: 1
'
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
