#!/bin/sh
# Regenerates the unit tests' golden vectors with the independent Python generators and compares
# them with the C files (run by `make check`):
#   tests/tools/gen_golden.py --check             tests/unit/control_fixtures.c
#   tests/tools/gen_handshake_golden.py --check   tests/unit/test_handshake.c
#   tests/tools/gen_control_golden.py --check     tests/unit/test_control_channel.c
# (the last two share the Noise code of tests/tools/noise_ref.py)
# A missing python3 or python3-nacl is a failure, not a skip: contrib/install-deps.sh installs
# both. Uses the first of $PYTHON3, python3, /usr/bin/python3 that can import nacl (a python3
# of pyenv or a virtualenv earlier in PATH does not see Debian's python3-nacl).
# Environment: top_srcdir.
set -u
# the generators import each other: no __pycache__ in the source tree
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE

: "${top_srcdir:=$(dirname "$0")/../..}"
tools="$top_srcdir/tests/tools"

python=
for candidate in ${PYTHON3:+"$PYTHON3"} python3 /usr/bin/python3; do
	if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import nacl.bindings' 2>/dev/null; then
		python=$candidate
		break
	fi
done
if [ -z "$python" ]; then
	echo "FAIL: no python3 with nacl (python3 and python3-nacl; contrib/install-deps.sh installs them)" >&2
	exit 1
fi
echo "using $(command -v "$python") ($("$python" --version 2>&1))"

status=0
for gen in gen_golden.py gen_handshake_golden.py gen_control_golden.py; do
	if "$python" "$tools/$gen" --check; then
		echo "PASS: $gen --check"
	else
		echo "FAIL: $gen --check" >&2
		status=1
	fi
done
exit $status
