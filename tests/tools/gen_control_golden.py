#!/usr/bin/env python3
"""Regenerates the golden control channel frames of tests/unit/test_control_channel.c from the
specifications alone.

  tests/tools/gen_control_golden.py          prints the golden hex strings (name and hex per line)
  tests/tools/gen_control_golden.py --check [PATH]
                                             regenerates them and compares with the C file (default
                                             tests/unit/test_control_channel.c); exit 1 on any difference

Written from the Noise specification (tests/tools/noise_ref.py, shared with
gen_handshake_golden.py) and the framing of src/core/control.h, not from control_channel.c or
noise.c:

  every frame is a 2-byte big-endian length, then that many bytes
  Noise_IK_25519_ChaChaPoly_BLAKE2b, prologue "meshcoord v1" (the version is CONTROL_PROTOCOL_VERSION)
    <- s
    ...
    -> e, es, s, ss, {t}     frame 1 (hello):   "MSHC" (CONTROL_MAGIC) | version 1 | Noise message 1
    <- e, ee, se, {}         frame 2 (welcome): Noise message 2, empty payload
  t is the TAI64N timestamp (as in the data plane: tai64n() of gen_handshake_golden.py). Then
  transport frames: ChaCha20-Poly1305 under Split()'s k1 (node -> coordinator) or k2
  (coordinator -> node), nonces counting from 0 in each direction, no associated data.

The sealed frames carry what test_handshake_golden seals: the encodings of the samples
"register" and "registered" (gen_golden.py's control_samples(), which gen_golden.py --check
compares with control_fixtures.c) and a lone KEEPALIVE type byte.

--check first replays the public cacophony vector for Noise_IK_25519_ChaChaPoly_BLAKE2b
(tests/unit/noise-25519.json) through noise_ref.py, so a Noise mistake here cannot pass as a
mismatch in C. Needs python3 and python3-nacl (PyNaCl: libsodium's X25519 and ChaCha20-Poly1305).
"""
import struct
import sys
from pathlib import Path

from gen_golden import KEEPALIVE, control_samples, seq
from gen_handshake_golden import tai64n
from noise_ref import ENCRYPT, HandshakeState, golden_main, public_key

PROTOCOL = "Noise_IK_25519_ChaChaPoly_BLAKE2b"

# ---------------------------------------------------------------- the control channel's framing (control.h)
CONTROL_PROTOCOL_VERSION = 1
PROLOGUE = b"meshcoord v%d" % CONTROL_PROTOCOL_VERSION
CONTROL_MAGIC = 0x4D534843  # "MSHC"
HELLO_LEN = 4 + 1 + 32 + 48 + 12 + 16   # magic, version, e, {s}, {t}
WELCOME_LEN = 32 + 16                   # e, {}


def frame(body):
    assert 0 < len(body) <= 4096  # CONTROL_MAX_FRAME
    return struct.pack(">H", len(body)) + body


# The fixed inputs of test_control_channel.c (fixture_setup): keys are seq_bytes() runs; the
# timestamp is the one of test_handshake.c, 1700000000.123456789.
NODE_STATIC, COORD_STATIC = seq(32, 0x10), seq(32, 0x40)
NODE_EPHEMERAL, COORD_EPHEMERAL = seq(32, 0x70), seq(32, 0xA0)
TIMESTAMP = (1700000000, 123456789)


def control_goldens():
    """(C array name, bytes) for each golden value, in the C file's order."""
    ts = tai64n(*TIMESTAMP)
    node_pub, coord_pub = public_key(NODE_STATIC), public_key(COORD_STATIC)

    node = HandshakeState(PROTOCOL, True, PROLOGUE, NODE_STATIC, NODE_EPHEMERAL, rs=coord_pub)
    hello = frame(struct.pack(">IB", CONTROL_MAGIC, CONTROL_PROTOCOL_VERSION) + node.write_message(ts))
    assert len(hello) == 2 + HELLO_LEN

    coord = HandshakeState(PROTOCOL, False, PROLOGUE, COORD_STATIC, COORD_EPHEMERAL)
    assert coord.read_message(hello[7:]) == ts and coord.rs == node_pub
    welcome = frame(coord.write_message(b""))
    assert len(welcome) == 2 + WELCOME_LEN

    assert node.read_message(welcome[2:]) == b"" and node.done and coord.done
    assert (node.c1.k, node.c2.k) == (coord.c1.k, coord.c2.k) and node.h == coord.h

    samples = dict(control_samples())
    k1, k2 = node.c1.k, node.c2.k
    return [
        ("golden_timestamp", ts),
        ("golden_hello", hello),
        ("golden_welcome", welcome),
        ("golden_k1", k1),
        ("golden_k2", k2),
        ("golden_node_public", node_pub),
        # sealed directly (no record header), as test_handshake_golden does
        ("golden_seal_node0", frame(ENCRYPT(k1, 0, b"", samples["register"]))),
        ("golden_seal_coord0", frame(ENCRYPT(k2, 0, b"", samples["registered"]))),
        ("golden_seal_coord1", frame(ENCRYPT(k2, 1, b"", bytes([KEEPALIVE])))),
    ]


def main(argv):
    unit = Path(__file__).resolve().parent.parent / "unit"
    return golden_main(argv, __doc__, PROTOCOL, unit / "test_control_channel.c", control_goldens)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
