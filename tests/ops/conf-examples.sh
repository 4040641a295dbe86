#!/bin/bash
# Every example in conf/ is read by the real parser ('check-config', the code 'up' and
# 'serve' use), so no example can rot: conf/meshd*.yaml by meshd, conf/meshcoord*.yaml by
# meshcoord, conf/meshcoord-policy*.yaml by 'meshcoord policy check' (the access rules). A file matching neither fails (name it after the program that reads it), and
# so does one that make install would not ship (dist_doc_DATA in Makefile.am).
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
MESHD=${MESHD:-$top_builddir/src/meshd/meshd}
MESHCOORD=${MESHCOORD:-$top_builddir/coord/meshcoord}
for b in "$MESHD" "$MESHCOORD"; do
	[ -x "$b" ] || { echo "conf-examples.sh: error: $b not built (run make)" >&2; exit 1; }
done

passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }

n=0
for f in "$top_srcdir"/conf/*; do
	name=${f##*/}
	n=$((n + 1))
	check=(check-config -c "$f")
	case $name in
	meshd*.yaml) bin=$MESHD ;;
	meshcoord-policy*.yaml) bin=$MESHCOORD check=(policy check --file "$f" -c /nonexistent/coord.yaml) ;;
	meshcoord*.yaml) bin=$MESHCOORD ;;
	*)
		not_ok "conf/$name: not meshd*.yaml or meshcoord*.yaml, so no test reads it"
		continue
		;;
	esac
	if out=$("$bin" "${check[@]}" 2>&1); then
		ok "conf/$name: ${out#"$f": }"
	else
		not_ok "conf/$name is refused by ${bin##*/}: $out"
	fi
	if grep -Eq "^dist_doc_DATA[^#]*conf/$name" "$top_srcdir/Makefile.am"; then
		ok "conf/$name is installed (dist_doc_DATA)"
	else
		not_ok "conf/$name is missing from dist_doc_DATA in Makefile.am (make install would not ship it)"
	fi
done
[ "$n" -ge 2 ] || not_ok "conf/ holds the examples (found $n files)"
echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
