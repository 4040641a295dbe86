#!/usr/bin/python3
"""The WireGuard peer that wg-capture.sh puts opposite a stock wireguard-go, and the capture file.

  wg_capture.py keys RUN                 prints the shell variables of RUN's fixed keys (base64 for
                                         `wg set`, hex for the record)
  wg_capture.py respond RUN OUT.json     answers wireguard-go as RUN says (below) and writes
                                         everything it saw and sent to OUT.json
  wg_capture.py merge SOURCE OUT PART... joins the runs' files into the capture file OUT with its
                                         "source" text

What the responder does, each step checked before the next (any surprise ends it with exit 1):
  1. reads wireguard-go's handshake initiation: mac1 must be WireGuard's, mac2 zero;
  2. answers it with a cookie reply of its own: cookie = MAC(fixed secret, wireguard-go's IP and
     port), fixed 24-byte nonce, XChaCha20-Poly1305 keyed with HASH("cookie--" || our public
     key), the initiation's mac1 as AD;
  3. reads the retry initiation (wireguard-go sends it ~5 s later): mac2 must be
     MAC(cookie, every byte before mac2), which only a peer that opened our reply can compute;
  4. answers the retry with a handshake response (fixed ephemeral key and index, mac1 keyed for
     wireguard-go's public key, mac2 zero);
  5. decrypts wireguard-go's data messages, answers an ICMP echo request with an encrypted echo
     reply (so ping in wireguard-go's namespace succeeds), and stops after a keepalive.

The Noise part is noise_ref.py's (written from the Noise specification); WireGuard's framing,
MACs and cookie are written here from the protocol description (wireguard.com/protocol and the
whitepaper, section 5.4). Needs /usr/bin/python3 with python3-nacl.
"""
import base64
import hashlib
import json
import socket
import struct
import sys
import time
from pathlib import Path

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

from noise_ref import DECRYPT, ENCRYPT, HandshakeState, public_key

PROTOCOL = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
MSG_INITIATION, MSG_RESPONSE, MSG_COOKIE_REPLY, MSG_DATA = 1, 2, 3, 4
INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN, DATA_MIN_LEN = 148, 92, 64, 32
INIT_MAC1, INIT_MAC2 = 116, 132   # offsets of mac1 and mac2 in an initiation
MAC_LEN = 16

# The addresses wg-capture.sh gives each side: underlay on the veth pair, overlay on wireguard-go's
# interface (the Python side has no interface: it answers in the tunnel by hand).
WG_GO_UNDERLAY, PY_UNDERLAY = "192.0.2.1", "192.0.2.2"
WG_GO_PORT, PY_PORT = 51820, 51821
WG_GO_OVERLAY, PY_OVERLAY = "100.64.0.1", "100.64.0.2"

# How long the whole exchange may take: the retry comes ~5 s after the first initiation, the
# ping after the response, the keepalive at most 10 s after our echo reply.
RESPOND_DEADLINE_S = 45

# ---------------------------------------------------------------- the fixed inputs
def fixed(label, n=32):
    """n bytes that anyone can recompute: BLAKE2s of a label (a stand-in for a random choice)."""
    return hashlib.blake2s(b"meshd wg-capture: " + label.encode(), digest_size=n).digest()


def private_key(label):
    """An X25519 private key, already clamped (so no implementation's clamping changes it)."""
    k = bytearray(fixed(label))
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


# run name -> (psk or None, responder index)
RUNS = {"cookie": (None, 0x5EED0001), "psk": (fixed("psk"), 0x5EED0002)}


def run_inputs(run):
    psk, index = RUNS[run]
    return {
        "wireguard_go_private": private_key("wireguard-go static"),
        "python_private": private_key("python static"),
        "python_ephemeral_private": private_key("python ephemeral " + run),
        "psk": psk if psk is not None else bytes(32),
        "psk_configured": psk is not None,
        "responder_index": index,
        "cookie_secret": fixed("cookie secret " + run),
        "cookie_nonce": fixed("cookie nonce " + run, 24),
    }


# ---------------------------------------------------------------- WireGuard's MACs and cookie
def HASH(data):
    return hashlib.blake2s(data).digest()


def MAC(key, data):
    return hashlib.blake2s(data, key=key, digest_size=MAC_LEN).digest()


def mac1(msg_before_mac1, receiver_public):
    return MAC(HASH(b"mac1----" + receiver_public), msg_before_mac1)


def cookie_source(ip, port):
    """What a cookie covers: the IPv4 address and the port, both in network order."""
    return socket.inet_aton(ip) + struct.pack(">H", port)


def cookie_reply(initiation, cookie, nonce, our_public):
    key = HASH(b"cookie--" + our_public)
    sealed = crypto_aead_xchacha20poly1305_ietf_encrypt(cookie, initiation[INIT_MAC1:INIT_MAC2], nonce, key)
    return header(MSG_COOKIE_REPLY) + initiation[4:8] + nonce + sealed


def header(msg_type):
    return bytes([msg_type, 0, 0, 0])


def tai64n_unix(ts):
    """Unix seconds of a TAI64N label (2^62 + 10 + Unix seconds, big-endian)."""
    return struct.unpack(">Q", ts[:8])[0] - (1 << 62) - 10


# ---------------------------------------------------------------- the tunnel's inner packets
def ip_checksum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def echo_reply(plaintext):
    """The echo reply to an IPv4 ICMP echo request from WG_GO_OVERLAY to PY_OVERLAY, else None."""
    if len(plaintext) < 28 or plaintext[0] >> 4 != 4:
        return None
    ihl = (plaintext[0] & 15) * 4
    total = struct.unpack(">H", plaintext[2:4])[0]
    src, dst = socket.inet_ntoa(plaintext[12:16]), socket.inet_ntoa(plaintext[16:20])
    if plaintext[9] != 1 or total > len(plaintext) or (src, dst) != (WG_GO_OVERLAY, PY_OVERLAY) \
            or plaintext[ihl] != 8:
        return None
    icmp = bytearray(plaintext[ihl:total])
    icmp[0], icmp[2:4] = 0, b"\x00\x00"
    icmp[2:4] = struct.pack(">H", ip_checksum(bytes(icmp)))
    ip = bytearray(plaintext[:ihl])
    ip[8], ip[10:12] = 64, b"\x00\x00"
    ip[12:16], ip[16:20] = plaintext[16:20], plaintext[12:16]
    ip[10:12] = struct.pack(">H", ip_checksum(bytes(ip)))
    return bytes(ip) + bytes(icmp)


def pad16(data):
    return data + bytes(-len(data) % 16)


# ---------------------------------------------------------------- the responder
class Failure(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failure(what)


def read_initiation(msg, inputs, label):
    """Checks mac1 and consumes the initiation as responder: (HandshakeState, timestamp)."""
    py_public = public_key(inputs["python_private"])
    expect(len(msg) == INITIATION_LEN and msg[:4] == header(MSG_INITIATION), f"{label}: not an initiation")
    expect(msg[INIT_MAC1:INIT_MAC2] == mac1(msg[:INIT_MAC1], py_public), f"{label}: mac1 is not WireGuard's")
    hs = HandshakeState(PROTOCOL, False, PROLOGUE, inputs["python_private"], inputs["python_ephemeral_private"],
                        psk=inputs["psk"])
    timestamp = hs.read_message(msg[8:INIT_MAC1])
    expect(hs.rs == public_key(inputs["wireguard_go_private"]), f"{label}: static key is not wireguard-go's")
    expect(len(timestamp) == 12 and abs(tai64n_unix(timestamp) - time.time()) < 3600,
           f"{label}: timestamp {timestamp.hex()} is not now")
    return hs, timestamp


def respond(run, out_path):
    inputs = run_inputs(run)
    wg_public = public_key(inputs["wireguard_go_private"])
    source = cookie_source(WG_GO_UNDERLAY, WG_GO_PORT)
    cookie = MAC(inputs["cookie_secret"], source)
    record = {"name": run}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((PY_UNDERLAY, PY_PORT))
    deadline = time.monotonic() + RESPOND_DEADLINE_S
    print("ready", flush=True)

    def receive(what):
        while True:
            left = deadline - time.monotonic()
            expect(left > 0, f"no {what} within {RESPOND_DEADLINE_S} s")
            sock.settimeout(left)
            try:
                msg, addr = sock.recvfrom(65536)
            except socket.timeout:
                continue
            # Only wireguard-go is on this link; anything else is a broken setup.
            expect(addr == (WG_GO_UNDERLAY, WG_GO_PORT), f"datagram from {addr}, not wireguard-go")
            print(f"received type {msg[0]}, {len(msg)} bytes, while waiting for {what}", flush=True)
            return msg

    def send(msg):
        sock.sendto(msg, (WG_GO_UNDERLAY, WG_GO_PORT))

    # 1, 2: the first initiation and our cookie reply
    first = receive("initiation")
    _, first_ts = read_initiation(first, inputs, "first initiation")
    expect(first[INIT_MAC2:] == bytes(MAC_LEN), "first initiation: mac2 is not zero")
    reply = cookie_reply(first, cookie, inputs["cookie_nonce"], public_key(inputs["python_private"]))
    send(reply)
    record.update(initiation=first, initiation_timestamp=first_ts, cookie_source=source, cookie=cookie,
                  cookie_reply=reply)

    # 3, 4: the retry, carrying mac2, and our response
    retry = receive("retry initiation")
    while retry == first:                      # a duplicate of the first is not the retry
        retry = receive("retry initiation")
    expect(retry[INIT_MAC2:] != bytes(MAC_LEN), "retry initiation has no mac2: the cookie reply was not taken")
    expect(retry[INIT_MAC2:] == MAC(cookie, retry[:INIT_MAC2]), "retry initiation: mac2 is not MAC(cookie, ...)")
    hs, retry_ts = read_initiation(retry, inputs, "retry initiation")
    expect(retry_ts > first_ts, "retry timestamp does not grow")
    noise = hs.write_message(b"")
    response = header(MSG_RESPONSE) + struct.pack("<I", inputs["responder_index"]) + retry[4:8] + noise
    response += mac1(response, wg_public) + bytes(MAC_LEN)
    expect(len(response) == RESPONSE_LEN, "response length")
    send(response)
    record.update(retry_initiation=retry, retry_timestamp=retry_ts, response=response,
                  transport_initiator_to_responder=hs.c1.k, transport_responder_to_initiator=hs.c2.k)

    # 5: wireguard-go's data, our echo replies, until a keepalive
    received, sent = [], []
    while True:
        msg = receive("data")
        expect(len(msg) >= DATA_MIN_LEN and msg[:4] == header(MSG_DATA), f"type {msg[0]} after the handshake")
        expect(struct.unpack("<I", msg[4:8])[0] == inputs["responder_index"], "data to another index")
        counter = struct.unpack("<Q", msg[8:16])[0]
        plain = DECRYPT(hs.c1.k, counter, b"", msg[16:])
        received.append({"message": msg, "plaintext": plain})
        if not plain:
            break
        answer = echo_reply(plain)
        expect(answer is not None, f"data message {counter}: not an ICMP echo request to {PY_OVERLAY}")
        answer = pad16(answer)
        out = header(MSG_DATA) + retry[4:8] + struct.pack("<Q", len(sent)) + ENCRYPT(hs.c2.k, len(sent), b"", answer)
        send(out)
        sent.append({"message": out, "plaintext": answer})
    expect(len(received) >= 2, "a keepalive but no echo request")
    record.update(data_from_wireguard_go=received, data_to_wireguard_go=sent)
    sock.close()

    for key in ("wireguard_go_private", "python_private", "python_ephemeral_private", "psk", "cookie_secret",
                "cookie_nonce"):
        record[key] = inputs[key]
    record["wireguard_go_public"] = wg_public
    record["python_public"] = public_key(inputs["python_private"])
    record["psk_configured"] = "yes" if inputs["psk_configured"] else "no"
    record["responder_index"] = struct.pack(">I", inputs["responder_index"])
    record["initiation_unix_time"] = str(tai64n_unix(first_ts))
    Path(out_path).write_text(json.dumps(to_hex(record), indent=1) + "\n")
    print(f"run {run}: captured {len(received)} data messages from wireguard-go", flush=True)


def to_hex(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: to_hex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_hex(v) for v in value]
    return value


# ---------------------------------------------------------------- the command line
def keys(run):
    inputs = run_inputs(run)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    print(f"WG_GO_PRIVATE={b64(inputs['wireguard_go_private'])}")
    print(f"PY_PUBLIC={b64(public_key(inputs['python_private']))}")
    print(f"PSK={b64(inputs['psk']) if inputs['psk_configured'] else ''}")


# The order of a run's members in the capture file: inputs first, then the messages in turn.
RUN_ORDER = ["name", "wireguard_go_private", "wireguard_go_public", "python_private", "python_public",
             "python_ephemeral_private", "psk_configured", "psk", "responder_index", "cookie_secret",
             "cookie_source", "cookie", "cookie_nonce", "initiation_unix_time", "initiation",
             "initiation_timestamp", "cookie_reply", "retry_initiation", "retry_timestamp", "response",
             "transport_initiator_to_responder", "transport_responder_to_initiator", "data_from_wireguard_go",
             "data_to_wireguard_go"]


def merge(source, out, parts):
    runs = []
    for part in parts:
        run = json.loads(Path(part).read_text())
        assert set(run) == set(RUN_ORDER), f"{part}: members {sorted(set(run) ^ set(RUN_ORDER))}"
        runs.append({k: run[k] for k in RUN_ORDER})
    doc = {
        "source": source,
        "format": "hex strings; indices big-endian hex; every message as the UDP payload on the wire; "
                  "psk is 32 zero bytes when psk_configured is no (as WireGuard)",
        "runs": runs,
    }
    Path(out).write_text(json.dumps(doc, indent=1) + "\n")


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "keys" and argv[2] in RUNS:
            keys(argv[2])
        elif len(argv) == 4 and argv[1] == "respond" and argv[2] in RUNS:
            respond(argv[2], argv[3])
        elif len(argv) >= 5 and argv[1] == "merge":
            merge(argv[2], argv[3], argv[4:])
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except Failure as exc:
        print(f"wg_capture.py: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
