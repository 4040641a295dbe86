#!/usr/bin/env python3
"""Regenerates golden vectors of the unit tests from the formats' descriptions alone.

  tests/tools/gen_golden.py control    the "Golden encodings" of tests/unit/control_fixtures.c
  tests/tools/gen_golden.py --check    regenerates them and compares with the C file (exit 1 on
                                       any difference)

Written from the format in src/core/control.h, not from control.c: a message is its type
(1 byte) then its body; strings are a 1-byte length then bytes; endpoints are family (4 or 6),
address (4 or 16 bytes), port (2, big-endian). The sample messages are the ones the C builders
in control_fixtures.c make (make_register, make_registered, ...), written again here.

Python's standard library only. The Noise vectors (X25519 and ChaCha20-Poly1305) have their
own generators: gen_handshake_golden.py for test_handshake.c, gen_control_golden.py for
test_control_channel.c (which seals the samples of control_samples() below).
"""
import re
import struct
import sys
from pathlib import Path

# Message types (control.h).
REGISTER, REGISTERED, ERROR, PEER, PEER_REMOVE, NETMAP_END, ENDPOINTS, KEEPALIVE = range(1, 9)
ERR_JOIN_KEY_USED = 4  # CONTROL_ERR_JOIN_KEY_USED
PUBLISH, PUBLISH_STATE, STREAM_OPEN, STREAM_REFUSE = range(17, 21)
TCP, UDP = 6, 17  # CONTROL_PROTO_*
PUBLISH_OPEN = 1  # CONTROL_PUBLISH_OPEN


def service(name, proto, port):
    return string(name) + bytes([proto]) + struct.pack(">H", port)


def seq(n, start):
    """The bytes start, start+1, ... (mod 256), as seq_bytes() in control_fixtures.c."""
    return bytes((start + i) & 0xFF for i in range(n))


def string(s):
    b = s.encode() if isinstance(s, str) else s
    assert len(b) < 256
    return bytes([len(b)]) + b


def v4(a, b, c, d, port):
    return bytes([4, a, b, c, d]) + struct.pack(">H", port)


def v6(hexaddr, port):
    addr = bytes.fromhex(hexaddr)
    assert len(addr) == 16
    return bytes([6]) + addr + struct.pack(">H", port)


def endpoints(eps):
    return bytes([len(eps)]) + b"".join(eps)


def control_samples():
    """(name, encoding) for each sample that has a golden encoding, in the C table's order."""
    reg = (bytes([REGISTER]) + string("laptop-1.home_lan") + string(seq(20, 0x30)) +
           endpoints([v4(192, 168, 1, 10, 51820), v6("20010db8000000000000000000000001", 51820),
                      v4(203, 0, 113, 7, 40000)]))
    registered = (bytes([REGISTERED]) + string("laptop-1") + bytes.fromhex("64400005") + bytes([10]) +
                  bytes.fromhex("fd123456789a00000000000000000005") + bytes([48]))
    error = bytes([ERROR]) + struct.pack(">H", ERR_JOIN_KEY_USED) + string("join key already used (key id 7)")
    peer = (bytes([PEER]) + seq(32, 0x50) + string("server") + bytes.fromhex("64400009") +
            bytes.fromhex("fd123456789a00000000000000000009") + bytes([1]) +
            endpoints([v6("20010db8000100000000000000000002", 51820), v4(198, 51, 100, 2, 1)]))
    return [
        ("register", reg),
        ("registered", registered),
        ("error", error),
        ("peer", peer),
        ("peer_remove", bytes([PEER_REMOVE]) + seq(32, 0x60)),
        ("netmap_end", bytes([NETMAP_END])),
        ("endpoints", bytes([ENDPOINTS]) + endpoints([v4(10, 0, 0, 2, 51820),
                                                     v6("fe800000000000000000000000000001", 65535)])),
        ("keepalive", bytes([KEEPALIVE])),
        # no join secret (a known node), no endpoints
        ("register_minimal", bytes([REGISTER]) + string("a") + string(b"") + endpoints([])),
        # a code from a newer coordinator, no text
        ("error_empty", bytes([ERROR]) + struct.pack(">H", 0xFFFF) + string("")),
        ("endpoints_empty", bytes([ENDPOINTS]) + endpoints([])),
        # publishing (issue 11): a count, then each service's name, protocol, port
        ("publish", bytes([PUBLISH, 2]) + service("web", TCP, 20080) + service("game", UDP, 27015)),
        ("publish_empty", bytes([PUBLISH, 0])),
        ("publish_state", bytes([PUBLISH_STATE]) + service("web", TCP, 20080) + bytes([PUBLISH_OPEN])),
        ("stream_refuse", bytes([STREAM_REFUSE]) + struct.pack(">Q", 0x0102030405060708)),
    ]


def c_goldens(path):
    """name -> hex of each golden encoding in the samples[] table of control_fixtures.c."""
    text = Path(path).read_text()
    table = text[text.index("const struct sample samples[]"):]
    out = {}
    for m in re.finditer(r'\{\s*"(\w+)",\s*\w+,\s*((?:"[0-9a-f]*"\s*)+)\}', table):
        out[m.group(1)] = "".join(re.findall(r'"([0-9a-f]*)"', m.group(2)))
    return out


def main(argv):
    here = Path(__file__).resolve().parent
    fixtures = here.parent / "unit" / "control_fixtures.c"
    if argv[1:] == ["control"]:
        for name, enc in control_samples():
            print(f"{name} {enc.hex()}")
        return 0
    if argv[1:] == ["--check"]:
        want = c_goldens(fixtures)
        bad = 0
        for name, enc in control_samples():
            if want.get(name) != enc.hex():
                print(f"{name}: C file has {want.get(name)}, generated {enc.hex()}", file=sys.stderr)
                bad += 1
        missing = set(want) - {n for n, _ in control_samples()}
        for name in sorted(missing):
            print(f"{name}: golden in the C file but not generated here", file=sys.stderr)
            bad += 1
        print(f"{len(want)} golden encodings in {fixtures.name}, {bad} differ")
        return 1 if bad else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
