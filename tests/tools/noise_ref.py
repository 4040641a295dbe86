"""A reference Noise implementation for the golden-vector generators, and their command line.

Used by gen_handshake_golden.py (the data plane, WireGuard's Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s)
and gen_control_golden.py (the control channel: Noise_IK_25519_ChaChaPoly_BLAKE2b). Written from the
Noise specification (revision 34: section 4 for the crypto functions, 5 for CipherState,
SymmetricState and HandshakeState, 7.5 for IK, 9 for psk modes, 12 for 25519, ChaChaPoly, BLAKE2s
and BLAKE2b), not from src/core/noise.c. Ephemeral keys are injected, so every output is fixed.

cacophony_replay() runs a protocol's public cacophony vector (tests/unit/noise-25519.json)
through this code, so that a Noise mistake here cannot pass as a mismatch in C.

Needs python3 and python3-nacl (PyNaCl: libsodium's X25519 and ChaCha20-Poly1305).
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

# ---------------------------------------------------------------- Noise crypto functions (spec 4, 12)
SUITE = r"25519_ChaChaPoly_(BLAKE2s|BLAKE2b)"
DHLEN = 32     # 25519
KEYLEN = 32    # cipher keys: the first 32 bytes of a HASHLEN output (spec 5.2, "truncate")
TAGLEN = 16    # ChaChaPoly


class Hash:
    """HASH, HMAC-HASH and HKDF of one of the suite's hash functions (spec 4.3, 12.6, 12.7)."""

    def __init__(self, name):
        self.fn = {"BLAKE2s": hashlib.blake2s, "BLAKE2b": hashlib.blake2b}[name]
        self.HASHLEN = self.fn().digest_size   # 32 for BLAKE2s, 64 for BLAKE2b

    def HASH(self, data):
        return self.fn(data).digest()

    def HMAC_HASH(self, key, data):
        # RFC 2104 with the hash's own block (64 bytes BLAKE2s, 128 BLAKE2b), as spec 4.3 requires
        return hmac.new(key, data, self.fn).digest()

    def HKDF(self, chaining_key, ikm, num_outputs):
        temp_key = self.HMAC_HASH(chaining_key, ikm)
        out1 = self.HMAC_HASH(temp_key, b"\x01")
        out2 = self.HMAC_HASH(temp_key, out1 + b"\x02")
        if num_outputs == 2:
            return out1, out2
        return out1, out2, self.HMAC_HASH(temp_key, out2 + b"\x03")


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


# ---------------------------------------------------------------- CipherState, SymmetricState (spec 5.1, 5.2)
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
        self.hash = Hash(parse_protocol(protocol_name)[1])
        name, hashlen = protocol_name.encode(), self.hash.HASHLEN
        self.h = name.ljust(hashlen, b"\x00") if len(name) <= hashlen else self.hash.HASH(name)
        self.ck = self.h
        self.cs = CipherState()

    def mix_key(self, ikm):
        self.ck, temp_k = self.hash.HKDF(self.ck, ikm, 2)
        self.cs = CipherState(temp_k[:KEYLEN])

    def mix_hash(self, data):
        self.h = self.hash.HASH(self.h + data)

    def mix_key_and_hash(self, ikm):
        self.ck, temp_h, temp_k = self.hash.HKDF(self.ck, ikm, 3)
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
        temp_k1, temp_k2 = self.hash.HKDF(self.ck, b"", 2)
        return CipherState(temp_k1[:KEYLEN]), CipherState(temp_k2[:KEYLEN])


# ---------------------------------------------------------------- HandshakeState (spec 5.3, 7.5, 9)
# pattern -> (responder's pre-message tokens, message token lists alternating from the initiator)
PATTERNS = {
    "IK": (["s"], [["e", "es", "s", "ss"], ["e", "ee", "se"]]),
    "IKpsk2": (["s"], [["e", "es", "s", "ss"], ["e", "ee", "se", "psk"]]),
}


def parse_protocol(protocol_name):
    """(pattern, hash name) of Noise_<pattern>_25519_ChaChaPoly_<BLAKE2s|BLAKE2b>."""
    m = re.fullmatch(r"Noise_(\w+?)_" + SUITE, protocol_name)
    if not m or m.group(1) not in PATTERNS:
        raise ValueError(f"not implemented here: {protocol_name}")
    return m.group(1), m.group(2)


class HandshakeState:
    """One side of a handshake of PATTERNS, with an injected ephemeral key.

    write_message / read_message process the next message in turn; after the last one, h is the
    handshake hash and c1, c2 the CipherStates of Split(): c1 encrypts initiator -> responder."""

    def __init__(self, protocol_name, initiator, prologue, s, e, rs=None, psk=None):
        pattern = parse_protocol(protocol_name)[0]
        pre_responder, self.messages = PATTERNS[pattern]
        self.psk_mode = "psk" in pattern
        assert (psk is not None) == self.psk_mode and len(psk or bytes(32)) == 32
        self.initiator = initiator
        self.s, self.s_pub = s, public_key(s)
        self.e, self.e_pub = e, public_key(e)
        self.rs, self.re, self.psk = rs, None, psk
        self.ss = SymmetricState(protocol_name)
        self.ss.mix_hash(prologue)
        for token in pre_responder:                 # "<- s": the responder's static key
            assert token == "s"
            self.ss.mix_hash(rs if initiator else self.s_pub)
        self.index = 0
        self.c1 = self.c2 = None

    @property
    def h(self):
        return self.ss.h

    @property
    def done(self):
        return self.index == len(self.messages)

    def _tokens(self, writing):
        assert not self.done, "handshake already complete"
        assert writing == (self.initiator == (self.index % 2 == 0)), "not this side's turn"
        tokens = self.messages[self.index]
        self.index += 1
        return tokens

    def _dh(self, token):
        # the first letter is the initiator's key, the second the responder's (spec 7.1)
        ini, resp = token
        if not self.initiator:
            ini, resp = resp, ini
        mine = self.e if ini == "e" else self.s
        theirs = self.re if resp == "e" else self.rs
        return DH(mine, theirs)

    def _finish(self):
        if self.done:
            self.c1, self.c2 = self.ss.split()

    def write_message(self, payload):
        out = b""
        for token in self._tokens(writing=True):
            if token == "e":
                out += self.e_pub
                self.ss.mix_hash(self.e_pub)
                if self.psk_mode:                   # spec 9.2: e is also a MixKey input
                    self.ss.mix_key(self.e_pub)
            elif token == "s":
                out += self.ss.encrypt_and_hash(self.s_pub)
            elif token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            else:
                self.ss.mix_key(self._dh(token))
        out += self.ss.encrypt_and_hash(payload)
        self._finish()
        return out

    def read_message(self, msg):
        off = 0
        for token in self._tokens(writing=False):
            if token == "e":
                self.re = msg[off:off + DHLEN]
                off += DHLEN
                self.ss.mix_hash(self.re)
                if self.psk_mode:
                    self.ss.mix_key(self.re)
            elif token == "s":
                n = DHLEN + (TAGLEN if self.ss.cs.k is not None else 0)
                self.rs = self.ss.decrypt_and_hash(msg[off:off + n])
                off += n
            elif token == "psk":
                self.ss.mix_key_and_hash(self.psk)
            else:
                self.ss.mix_key(self._dh(token))
        payload = self.ss.decrypt_and_hash(msg[off:])
        self._finish()
        return payload


# ---------------------------------------------------------------- the cacophony vectors
def cacophony_replay(vector_file, protocol_name):
    """Replays the cacophony vector of protocol_name: a list of problems (empty: all match), or
    None if the file has no such vector."""
    vectors = json.loads(Path(vector_file).read_text())["vectors"]
    v = next((x for x in vectors if x["protocol_name"] == protocol_name), None)
    if v is None:
        return None
    hx = bytes.fromhex

    def psk(side):
        psks = v.get(side + "_psks") or []
        return hx(psks[0]) if psks else None

    ini = HandshakeState(protocol_name, True, hx(v["init_prologue"]), hx(v["init_static"]),
                         hx(v["init_ephemeral"]), rs=hx(v["init_remote_static"]), psk=psk("init"))
    resp = HandshakeState(protocol_name, False, hx(v["resp_prologue"]), hx(v["resp_static"]),
                          hx(v["resp_ephemeral"]), psk=psk("resp"))
    problems = []

    def expect(what, got, want):
        if got != hx(want):
            problems.append(f"cacophony {protocol_name} {what}: got {got.hex()}, vector has {want}")

    try:
        # messages alternate, initiator first, through the handshake and then in transport,
        # where c1 carries initiator -> responder and c2 the other way
        for i, m in enumerate(v["messages"], start=1):
            send, recv = (ini, resp) if i % 2 else (resp, ini)
            if not ini.done:
                ct = send.write_message(hx(m["payload"]))
                pt = recv.read_message(ct)
                if ini.done:
                    expect("handshake hash (initiator)", ini.h, v["handshake_hash"])
                    expect("handshake hash (responder)", resp.h, v["handshake_hash"])
            else:
                ct = (ini.c1 if send is ini else resp.c2).encrypt(b"", hx(m["payload"]))
                pt = (resp.c1 if recv is resp else ini.c2).decrypt(b"", ct)
            expect(f"message {i}", ct, m["ciphertext"])
            expect(f"message {i} payload", pt, m["payload"])
    except Exception as exc:  # a failed decryption, or a malformed vector
        problems.append(f"cacophony {protocol_name}: {type(exc).__name__}: {exc}")
    return problems


# ---------------------------------------------------------------- the generators' command line
def c_goldens(path):
    """name -> hex of each `static const char golden_*[] = "..." "...";` in a C file."""
    text = Path(path).read_text()
    out = {}
    for m in re.finditer(r'static const char (golden_\w+)\[\]\s*=\s*((?:"[0-9a-fA-F]*"\s*)+);', text):
        out[m.group(1)] = "".join(re.findall(r'"([0-9a-fA-F]*)"', m.group(2)))
    return out


def golden_main(argv, doc, protocol_name, c_file, generate):
    """The command line of a generator: no argument prints `name hex` per golden value of
    generate() (a list of (C array name, bytes)); `--check [PATH]` replays the cacophony vector
    of protocol_name, then compares generate() with the golden_* arrays of PATH (default c_file):
    exit 1 on any difference, 2 on a usage error."""
    if len(argv) == 1:
        for name, value in generate():
            print(f"{name} {value.hex()}")
        return 0
    if argv[1] != "--check" or len(argv) > 3:
        print(doc.strip(), file=sys.stderr)
        return 2
    path = Path(argv[2]) if len(argv) == 3 else Path(c_file)
    vectors = Path(__file__).resolve().parent.parent / "unit" / "noise-25519.json"
    problems = cacophony_replay(vectors, protocol_name)
    if problems is None:
        print(f"{vectors.name} has no {protocol_name} vector; comparing without it", file=sys.stderr)
        replayed = "no cacophony vector"
    elif problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"this generator does not reproduce the cacophony {protocol_name} vector; not comparing",
              file=sys.stderr)
        return 1
    else:
        replayed = f"cacophony {protocol_name} vector reproduced"
    want = c_goldens(path)
    generated = generate()
    bad = 0
    for name, value in generated:
        if want.get(name) != value.hex():
            print(f"{name}: C file has {want.get(name)}, generated {value.hex()}", file=sys.stderr)
            bad += 1
    for name in sorted(set(want) - {n for n, _ in generated}):
        print(f"{name}: golden in the C file but not generated here", file=sys.stderr)
        bad += 1
    print(f"{replayed}; {len(want)} golden values in {path.name}, {bad} differ")
    return 1 if bad else 0
