#!/usr/bin/env python3
"""Regenerates the golden handshake of tests/unit/test_handshake.c from the specifications alone.

  tests/tools/gen_handshake_golden.py          prints the golden hex strings (name and hex per line)
  tests/tools/gen_handshake_golden.py --check [PATH]
                                               regenerates them and compares with the C file (default
                                               tests/unit/test_handshake.c); exit 1 on any difference

Written from the Noise specification (tests/tools/noise_ref.py, shared with gen_control_golden.py)
and WireGuard's protocol description (https://www.wireguard.com/protocol/, the whitepaper's
section 5.4), not from noise.c:

  Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, prologue "WireGuard v1 zx2c4 Jason@zx2c4.com"
    <- s
    ...
    -> e, es, s, ss          initiation: 01 00 00 00 | sender index (LE) | e | {s} | {t} | mac1 | mac2
    <- e, ee, se, psk        response:   02 00 00 00 | sender | receiver | e | {} | mac1 | mac2
  t is the TAI64N timestamp (2^62 + 10 + unix seconds, then nanoseconds rounded down to 2^24 ns,
  both big-endian); mac1 = BLAKE2s-128 keyed with BLAKE2s-256("mac1----" || receiver's static
  public key), over every byte before mac1; mac2 is zero (no cookie).

--check first replays the public cacophony vector for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s
(tests/unit/noise-25519.json) through noise_ref.py, so a Noise mistake here cannot pass as
a mismatch in C. Needs python3 and python3-nacl (PyNaCl: libsodium's X25519 and ChaCha20-Poly1305).
"""
import hashlib
import struct
import sys
from pathlib import Path

from noise_ref import HandshakeState, golden_main, public_key

PROTOCOL = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"

# ---------------------------------------------------------------- WireGuard's framing (wire.h, handshake.h)
PROLOGUE = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
MSG_INITIATION, MSG_RESPONSE = 1, 2
MAC_LEN = 16
MAC1_LABEL = b"mac1----"


def tai64n(sec, nsec):
    """TAI64N label of Unix time sec.nsec: 2^62 + 10 s (TAI - UTC in 1970), nanoseconds to 2^24."""
    return struct.pack(">QI", (1 << 62) + 10 + sec, nsec & ~((1 << 24) - 1))


def mac1(msg_before_mac1, receiver_public):
    key = hashlib.blake2s(MAC1_LABEL + receiver_public, digest_size=32).digest()
    return hashlib.blake2s(msg_before_mac1, key=key, digest_size=MAC_LEN).digest()


def header(msg_type):
    return bytes([msg_type, 0, 0, 0])


def seq(n, start):
    """The bytes start, start+1, ... (mod 256), as seq_key() in test_handshake.c."""
    return bytes((start + i) & 0xFF for i in range(n))


# The fixed inputs of test_handshake.c (fixture_setup and the enum at its top).
INI_STATIC, RESP_STATIC = seq(32, 0x10), seq(32, 0x40)
INI_EPHEMERAL, RESP_EPHEMERAL = seq(32, 0x70), seq(32, 0xA0)
PSK = seq(32, 0xD0)
INIT_INDEX, RESP_INDEX = 0x01020304, 0xA1B2C3D4
TIMESTAMP = (1700000000, 123456789)


def handshake_goldens():
    """(C array name, bytes) for each golden value, in the C file's order."""
    ts = tai64n(*TIMESTAMP)
    ini_pub, resp_pub = public_key(INI_STATIC), public_key(RESP_STATIC)

    ini = HandshakeState(PROTOCOL, True, PROLOGUE, INI_STATIC, INI_EPHEMERAL, rs=resp_pub, psk=PSK)
    initiation = header(MSG_INITIATION) + struct.pack("<I", INIT_INDEX) + ini.write_message(ts)
    initiation += mac1(initiation, resp_pub) + bytes(MAC_LEN)
    assert len(initiation) == 148

    resp = HandshakeState(PROTOCOL, False, PROLOGUE, RESP_STATIC, RESP_EPHEMERAL, psk=PSK)
    assert resp.read_message(initiation[8:116]) == ts and resp.rs == ini_pub
    sender = struct.unpack("<I", initiation[4:8])[0]
    noise2 = resp.write_message(b"")
    response = header(MSG_RESPONSE) + struct.pack("<II", RESP_INDEX, sender) + noise2
    response += mac1(response, ini_pub) + bytes(MAC_LEN)
    assert len(response) == 92

    assert ini.read_message(response[12:60]) == b"" and ini.done and resp.done
    assert (ini.c1.k, ini.c2.k) == (resp.c1.k, resp.c2.k) and ini.h == resp.h
    # k1 is the initiator's sending key, k2 the responder's
    return [
        ("golden_timestamp", ts),
        ("golden_initiation", initiation),
        ("golden_response", response),
        ("golden_k1", ini.c1.k),
        ("golden_k2", ini.c2.k),
    ]


def main(argv):
    unit = Path(__file__).resolve().parent.parent / "unit"
    return golden_main(argv, __doc__, PROTOCOL, unit / "test_handshake.c", handshake_goldens)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
