#!/usr/bin/env python3
"""Regenerates the golden handshake of tests/unit/test_handshake.c from the specifications alone.

  tests/tools/gen_handshake_golden.py          prints the golden hex strings (name and hex per line)
  tests/tools/gen_handshake_golden.py --check [PATH]
                                               regenerates them and compares with the C file (default
                                               tests/unit/test_handshake.c); exit 1 on any difference

Written from the Noise specification (revision 34: sections 4 and 5 for the crypto functions and
the state objects, 7.5 for IK, 9 for psk modes) and the message layout of src/core/wire.h, not
from noise.c:

  Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b, prologue "meshd v1" (the version is WIRE_PROTOCOL_VERSION)
    <- s
    ...
    -> e, es, s, ss          initiation: 01 01 00 00 | sender index (LE) | e | {s} | {t} | mac1 | mac2
    <- e, ee, se, psk        response:   02 01 00 00 | sender | receiver | e | {} | mac1 | mac2
  t is the TAI64N timestamp (2^62 + 10 + unix seconds, then nanoseconds rounded down to 2^24 ns,
  both big-endian); mac1 = BLAKE2b-128 keyed with BLAKE2b-256("mac1----" || receiver's static
  public key), over every byte before mac1; mac2 is zero (reserved for the cookie).

--check first replays the public cacophony vector for Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b
(tests/unit/noise-25519.json) through this implementation, so a Noise mistake here cannot pass as
a mismatch in C. Needs python3 and python3-nacl (PyNaCl: libsodium's X25519 and ChaCha20-Poly1305).
"""
import hashlib
import hmac
import json
import re
import struct
import sys
from pathlib import Path

from nacl.bindings import (crypto_aead_chacha20poly1305_ietf_decrypt,
                           crypto_aead_chacha20poly1305_ietf_encrypt, crypto_scalarmult,
                           crypto_scalarmult_base)

# ---------------------------------------------------------------- Noise crypto functions (spec 4)
HASHLEN = 64   # BLAKE2b
DHLEN = 32     # 25519
KEYLEN = 32    # cipher keys: the first 32 bytes of a HASHLEN output (spec 5.2, "truncate")


def HASH(data):
    return hashlib.blake2b(data).digest()


def HMAC_HASH(key, data):
    # RFC 2104 with BLAKE2b's 128-byte block, as spec 4.3 requires
    return hmac.new(key, data, hashlib.blake2b).digest()


def HKDF(chaining_key, ikm, num_outputs):
    temp_key = HMAC_HASH(chaining_key, ikm)
    out1 = HMAC_HASH(temp_key, b"\x01")
    out2 = HMAC_HASH(temp_key, out1 + b"\x02")
    if num_outputs == 2:
        return out1, out2
    return out1, out2, HMAC_HASH(temp_key, out2 + b"\x03")


def DH(private, public):
    return crypto_scalarmult(private, public)


def public_key(private):
    return crypto_scalarmult_base(private)


def nonce(n):
    # ChaChaPoly (spec 12.3): 32 bits of zeros followed by the little-endian 64-bit n
    return b"\x00" * 4 + struct.pack("<Q", n)


def ENCRYPT(k, n, ad, plaintext):
    return crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, nonce(n), k)


def DECRYPT(k, n, ad, ciphertext):
    return crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce(n), k)


# ---------------------------------------------------------------- CipherState, SymmetricState (spec 5)
class CipherState:
    def __init__(self, k=None):
        self.k, self.n = k, 0

    def encrypt(self, ad, plaintext):
        if self.k is None:
            return plaintext
        out = ENCRYPT(self.k, self.n, ad, plaintext)
        self.n += 1
        return out

    def decrypt(self, ad, ciphertext):
        if self.k is None:
            return ciphertext
        out = DECRYPT(self.k, self.n, ad, ciphertext)
        self.n += 1
        return out


class SymmetricState:
    def __init__(self, protocol_name):
        name = protocol_name.encode()
        self.h = name.ljust(HASHLEN, b"\x00") if len(name) <= HASHLEN else HASH(name)
        self.ck = self.h
        self.cs = CipherState()

    def mix_key(self, ikm):
        self.ck, temp_k = HKDF(self.ck, ikm, 2)
        self.cs = CipherState(temp_k[:KEYLEN])

    def mix_hash(self, data):
        self.h = HASH(self.h + data)

    def mix_key_and_hash(self, ikm):
        self.ck, temp_h, temp_k = HKDF(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cs = CipherState(temp_k[:KEYLEN])

    def encrypt_and_hash(self, plaintext):
        ciphertext = self.cs.encrypt(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext):
        plaintext = self.cs.decrypt(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self):
        temp_k1, temp_k2 = HKDF(self.ck, b"", 2)
        return CipherState(temp_k1[:KEYLEN]), CipherState(temp_k2[:KEYLEN])


# ---------------------------------------------------------------- HandshakeState for IKpsk2 (spec 5.3, 7.5, 9)
class IKpsk2:
    """Both roles of Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b, with injected ephemeral keys."""
    PROTOCOL = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b"

    def __init__(self, initiator, prologue, s, e, psk, rs=None):
        self.initiator = initiator
        self.ss = SymmetricState(self.PROTOCOL)
        self.ss.mix_hash(prologue)
        self.s, self.s_pub = s, public_key(s)
        self.e, self.e_pub = e, public_key(e)
        self.psk = psk
        self.rs, self.re = rs, None
        # pre-message "<- s": the responder's static key
        self.ss.mix_hash(rs if initiator else self.s_pub)

    # the "e" token; in a psk handshake e also goes through MixKey (spec 9.2)
    def _write_e(self):
        self.ss.mix_hash(self.e_pub)
        self.ss.mix_key(self.e_pub)
        return self.e_pub

    def _read_e(self, re):
        self.re = re
        self.ss.mix_hash(re)
        self.ss.mix_key(re)

    def write_message1(self, payload):          # -> e, es, s, ss
        out = self._write_e()
        self.ss.mix_key(DH(self.e, self.rs))
        out += self.ss.encrypt_and_hash(self.s_pub)
        self.ss.mix_key(DH(self.s, self.rs))
        return out + self.ss.encrypt_and_hash(payload)

    def read_message1(self, msg):
        self._read_e(msg[:DHLEN])
        self.ss.mix_key(DH(self.s, self.re))
        self.rs = self.ss.decrypt_and_hash(msg[DHLEN:2 * DHLEN + 16])
        self.ss.mix_key(DH(self.s, self.rs))
        return self.ss.decrypt_and_hash(msg[2 * DHLEN + 16:])

    def write_message2(self, payload):          # <- e, ee, se, psk
        out = self._write_e()
        self.ss.mix_key(DH(self.e, self.re))
        self.ss.mix_key(DH(self.e, self.rs))
        self.ss.mix_key_and_hash(self.psk)
        out += self.ss.encrypt_and_hash(payload)
        return out, self.ss.split()

    def read_message2(self, msg):
        self._read_e(msg[:DHLEN])
        self.ss.mix_key(DH(self.e, self.re))
        self.ss.mix_key(DH(self.s, self.re))
        self.ss.mix_key_and_hash(self.psk)
        payload = self.ss.decrypt_and_hash(msg[DHLEN:])
        return payload, self.ss.split()


def cacophony_self_test(vector_file):
    """Replays the cacophony IKpsk2 BLAKE2b vector; returns a list of problems (empty: all match)."""
    vectors = json.loads(Path(vector_file).read_text())["vectors"]
    v = next(x for x in vectors if x["protocol_name"] == IKpsk2.PROTOCOL)
    hx = bytes.fromhex
    ini = IKpsk2(True, hx(v["init_prologue"]), hx(v["init_static"]), hx(v["init_ephemeral"]),
                 hx(v["init_psks"][0]), rs=hx(v["init_remote_static"]))
    resp = IKpsk2(False, hx(v["resp_prologue"]), hx(v["resp_static"]), hx(v["resp_ephemeral"]),
                  hx(v["resp_psks"][0]))
    msgs = v["messages"]
    problems = []

    def expect(what, got, want):
        if got != hx(want):
            problems.append(f"cacophony {what}: got {got.hex()}, vector has {want}")

    m1 = ini.write_message1(hx(msgs[0]["payload"]))
    expect("message 1", m1, msgs[0]["ciphertext"])
    expect("message 1 payload", resp.read_message1(m1), msgs[0]["payload"])
    m2, (r_c1, r_c2) = resp.write_message2(hx(msgs[1]["payload"]))
    expect("message 2", m2, msgs[1]["ciphertext"])
    p2, (i_c1, i_c2) = ini.read_message2(m2)
    expect("message 2 payload", p2, msgs[1]["payload"])
    expect("handshake hash (initiator)", ini.ss.h, v["handshake_hash"])
    expect("handshake hash (responder)", resp.ss.h, v["handshake_hash"])
    # transport messages alternate, initiator first: c1 carries initiator -> responder
    for i, m in enumerate(msgs[2:], start=3):
        send, recv = (i_c1, r_c1) if i % 2 else (r_c2, i_c2)
        ct = send.encrypt(b"", hx(m["payload"]))
        expect(f"message {i}", ct, m["ciphertext"])
        expect(f"message {i} payload", recv.decrypt(b"", ct), m["payload"])
    return problems


# ---------------------------------------------------------------- meshd's framing (wire.h, handshake.h)
PROTOCOL_VERSION = 1
PROLOGUE = b"meshd v%d" % PROTOCOL_VERSION
MSG_INITIATION, MSG_RESPONSE = 1, 2
MAC_LEN = 16
MAC1_LABEL = b"mac1----"


def tai64n(sec, nsec):
    """TAI64N label of Unix time sec.nsec: 2^62 + 10 s (TAI - UTC in 1970), nanoseconds to 2^24."""
    return struct.pack(">QI", (1 << 62) + 10 + sec, nsec & ~((1 << 24) - 1))


def mac1(msg_before_mac1, receiver_public):
    key = hashlib.blake2b(MAC1_LABEL + receiver_public, digest_size=32).digest()
    return hashlib.blake2b(msg_before_mac1, key=key, digest_size=MAC_LEN).digest()


def header(msg_type):
    return bytes([msg_type, PROTOCOL_VERSION, 0, 0])


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

    ini = IKpsk2(True, PROLOGUE, INI_STATIC, INI_EPHEMERAL, PSK, rs=resp_pub)
    initiation = header(MSG_INITIATION) + struct.pack("<I", INIT_INDEX) + ini.write_message1(ts)
    initiation += mac1(initiation, resp_pub) + bytes(MAC_LEN)
    assert len(initiation) == 148

    resp = IKpsk2(False, PROLOGUE, RESP_STATIC, RESP_EPHEMERAL, PSK)
    assert resp.read_message1(initiation[8:116]) == ts and resp.rs == ini_pub
    sender = struct.unpack("<I", initiation[4:8])[0]
    noise2, (r_c1, r_c2) = resp.write_message2(b"")
    response = header(MSG_RESPONSE) + struct.pack("<II", RESP_INDEX, sender) + noise2
    response += mac1(response, ini_pub) + bytes(MAC_LEN)
    assert len(response) == 92

    payload, (i_c1, i_c2) = ini.read_message2(response[12:60])
    assert payload == b"" and (i_c1.k, i_c2.k) == (r_c1.k, r_c2.k) and ini.ss.h == resp.ss.h
    # k1 is the initiator's sending key, k2 the responder's
    return [
        ("golden_timestamp", ts),
        ("golden_initiation", initiation),
        ("golden_response", response),
        ("golden_k1", i_c1.k),
        ("golden_k2", i_c2.k),
    ]


def c_goldens(path):
    """name -> hex of each `static const char golden_*[] = "..." "...";` in the C file."""
    text = Path(path).read_text()
    out = {}
    for m in re.finditer(r'static const char (golden_\w+)\[\]\s*=\s*((?:"[0-9a-fA-F]*"\s*)+);', text):
        out[m.group(1)] = "".join(re.findall(r'"([0-9a-fA-F]*)"', m.group(2)))
    return out


def main(argv):
    here = Path(__file__).resolve().parent
    unit = here.parent / "unit"
    if len(argv) == 1:
        for name, value in handshake_goldens():
            print(f"{name} {value.hex()}")
        return 0
    if argv[1] == "--check" and len(argv) <= 3:
        path = Path(argv[2]) if len(argv) == 3 else unit / "test_handshake.c"
        bad = 0
        for problem in cacophony_self_test(unit / "noise-25519.json"):
            print(problem, file=sys.stderr)
            bad += 1
        if bad:
            print("this generator does not reproduce the cacophony IKpsk2 vector; not comparing", file=sys.stderr)
            return 1
        want = c_goldens(path)
        generated = handshake_goldens()
        for name, value in generated:
            if want.get(name) != value.hex():
                print(f"{name}: C file has {want.get(name)}, generated {value.hex()}", file=sys.stderr)
                bad += 1
        for name in sorted(set(want) - {n for n, _ in generated}):
            print(f"{name}: golden in the C file but not generated here", file=sys.stderr)
            bad += 1
        print(f"cacophony IKpsk2 vector reproduced; {len(want)} golden values in {path.name}, {bad} differ")
        return 1 if bad else 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
