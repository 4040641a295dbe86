#!/usr/bin/python3
"""The WireGuard peer that wg-capture.sh puts opposite a stock wireguard-go, and the capture file.

  wg_capture.py keys RUN                 prints the shell variables of RUN's fixed keys (base64 for
                                         `wg set`); RUN is cookie, psk or initiator
  wg_capture.py respond RUN OUT.json     wireguard-go initiates; answers it as below (RUN: cookie
                                         or psk) and writes everything seen and sent to OUT.json
  wg_capture.py initiate OUT.json        initiates to wireguard-go (initiate() says how)
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

from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt, crypto_aead_xchacha20poly1305_ietf_encrypt
from nacl.exceptions import CryptoError

from noise_ref import DECRYPT, ENCRYPT, HandshakeState, public_key

PROTOCOL = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
PROLOGUE = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
MSG_INITIATION, MSG_RESPONSE, MSG_COOKIE_REPLY, MSG_DATA = 1, 2, 3, 4
INITIATION_LEN, RESPONSE_LEN, COOKIE_REPLY_LEN, DATA_MIN_LEN = 148, 92, 64, 32
INIT_MAC1, INIT_MAC2 = 116, 132   # offsets of mac1 and mac2 in an initiation
MAC_LEN = 16
COOKIE_LEN = 16

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


class Link:
    """The UDP socket to wireguard-go, with one deadline for the whole exchange."""

    def __init__(self, limit_s):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((PY_UNDERLAY, PY_PORT))
        self.limit_s = limit_s
        self.deadline = time.monotonic() + limit_s

    def receive(self, what, quiet=False, wait_s=None):
        """The next datagram from wireguard-go; None if wait_s (else the deadline) passes first."""
        until = self.deadline if wait_s is None else min(self.deadline, time.monotonic() + wait_s)
        while True:
            left = until - time.monotonic()
            if left <= 0:
                expect(wait_s is not None, f"no {what} within {self.limit_s} s")
                return None
            self.sock.settimeout(left)
            try:
                msg, addr = self.sock.recvfrom(65536)
            except socket.timeout:
                continue
            # Only wireguard-go is on this link; anything else is a broken setup.
            expect(addr == (WG_GO_UNDERLAY, WG_GO_PORT), f"datagram from {addr}, not wireguard-go")
            if not quiet:
                print(f"received type {msg[0]}, {len(msg)} bytes, while waiting for {what}", flush=True)
            return msg

    def send(self, msg):
        self.sock.sendto(msg, (WG_GO_UNDERLAY, WG_GO_PORT))

    def close(self):
        self.sock.close()


def respond(run, out_path):
    inputs = run_inputs(run)
    wg_public = public_key(inputs["wireguard_go_private"])
    source = cookie_source(WG_GO_UNDERLAY, WG_GO_PORT)
    cookie = MAC(inputs["cookie_secret"], source)
    record = {"name": run}
    link = Link(RESPOND_DEADLINE_S)
    receive, send = link.receive, link.send
    print("ready", flush=True)

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
    link.close()

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


# ---------------------------------------------------------------- the initiator (wireguard-go responds)
INITIATOR_RUN = "initiator"
INITIATE_DEADLINE_S = 30
FLOOD_INDEX = 0xF100D000
# wireguard-go is "under load" while 128 handshake messages wait in its queue (QueueHandshakeSize
# / 8) and for a second after: up to FLOOD_BURSTS_MAX bursts of FLOOD_BURST get it there.
FLOOD_BURST, FLOOD_BURSTS_MAX = 256, 16
# The echo request we send through the tunnel, and wireguard-go's kernel answers.
ECHO_ID, ECHO_SEQ = 0x6D73, 1


def initiator_inputs():
    return {
        "wireguard_go_private": private_key("wireguard-go static"),
        "python_private": private_key("python static"),
        "psk": fixed("psk"),
        "first_ephemeral_private": private_key("python ephemeral initiator first"),
        "second_ephemeral_private": private_key("python ephemeral initiator second"),
        "first_index": 0x1D000001,
        "second_index": 0x1D000002,
    }


def tai64n_now():
    """TAI64N of now, the nanoseconds rounded down to 2^24 ns (as WireGuard)."""
    sec, nsec = divmod(time.time_ns(), 10**9)
    return struct.pack(">QI", (1 << 62) + 10 + sec, nsec & ~((1 << 24) - 1))


def make_initiation(inputs, ephemeral, index, timestamp, wg_public):
    """Our initiation to wireguard-go, mac2 zero: (HandshakeState, message)."""
    hs = HandshakeState(PROTOCOL, True, PROLOGUE, inputs["python_private"], ephemeral, rs=wg_public,
                        psk=inputs["psk"])
    msg = header(MSG_INITIATION) + struct.pack("<I", index) + hs.write_message(timestamp)
    msg += mac1(msg, wg_public) + bytes(MAC_LEN)
    return hs, msg


def flood_initiation(wg_public):
    """An initiation with a valid mac1 whose Noise part opens for nobody: wireguard-go spends a DH
    on it and drops it. Many of them in its queue put it under load."""
    body = header(MSG_INITIATION) + struct.pack("<I", FLOOD_INDEX) + (fixed("flood") * 4)[:INIT_MAC1 - 8]
    return body + mac1(body, wg_public) + bytes(MAC_LEN)


def open_cookie_reply(reply, mac1_sent, wg_public):
    expect(len(reply) == COOKIE_REPLY_LEN and reply[:4] == header(MSG_COOKIE_REPLY), "not a cookie reply")
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(reply[32:], mac1_sent, reply[8:32],
                                                         HASH(b"cookie--" + wg_public))
    except CryptoError:
        raise Failure("wireguard-go's cookie reply does not open with the mac1 we sent") from None


def echo_request():
    icmp = bytes([8, 0, 0, 0]) + struct.pack(">HH", ECHO_ID, ECHO_SEQ) + fixed("echo payload")
    icmp = icmp[:2] + struct.pack(">H", ip_checksum(icmp)) + icmp[4:]
    ip = bytearray(struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), ECHO_ID, 0, 64, 1, 0,
                               socket.inet_aton(PY_OVERLAY), socket.inet_aton(WG_GO_OVERLAY)))
    ip[10:12] = struct.pack(">H", ip_checksum(bytes(ip)))
    return bytes(ip) + icmp


def is_echo_reply(plain):
    return (len(plain) >= 28 and plain[0] == 0x45 and plain[9] == 1 and plain[20] == 0
            and socket.inet_ntoa(plain[12:16]) == WG_GO_OVERLAY and socket.inet_ntoa(plain[16:20]) == PY_OVERLAY
            and struct.unpack(">HH", plain[24:28]) == (ECHO_ID, ECHO_SEQ))


def receiver_of(msg):
    """The index a message is addressed to: a response carries its sender's first."""
    off = 8 if msg[0] == MSG_RESPONSE else 4
    return struct.unpack("<I", msg[off:off + 4])[0] if len(msg) >= off + 4 else None


def initiate(out_path):
    """Python initiates, wireguard-go responds: its cookie reply (under load), its response, its data.

      1. bursts of flood_initiation() until wireguard-go answers one with a cookie reply (it is
         under load now, and stays so for a second);
      2. our first initiation: wireguard-go must answer with a cookie reply, which opens with its
         mac1 and holds the cookie;
      3. our second initiation twice, back to back: with a wrong mac2 (it must get a cookie
         reply: wireguard-go is still under load) and with mac2 = MAC(cookie, ...) (it must get
         the handshake response: wireguard-go took our mac2);
      4. an echo request through the tunnel; wireguard-go's kernel answers through wireguard-go.
    """
    inputs = initiator_inputs()
    wg_public = public_key(inputs["wireguard_go_private"])
    first_index, second_index = inputs["first_index"], inputs["second_index"]
    link = Link(INITIATE_DEADLINE_S)
    flood_replies = 0
    print("ready", flush=True)

    def next_for(index, what, wait_s=None):
        """The next message to `index` (cookie replies to the flood are counted and dropped)."""
        nonlocal flood_replies
        while True:
            msg = link.receive(what, quiet=True, wait_s=wait_s)
            if msg is None:
                return None
            if receiver_of(msg) == FLOOD_INDEX and msg[0] == MSG_COOKIE_REPLY:
                flood_replies += 1
                continue
            print(f"received type {msg[0]}, {len(msg)} bytes, while waiting for {what}", flush=True)
            expect(receiver_of(msg) == index, f"type {msg[0]} to index {receiver_of(msg):#x} while waiting for {what}")
            return msg

    # 1. load
    flood = flood_initiation(wg_public)
    flood_sent = 0
    while not flood_replies:
        expect(flood_sent < FLOOD_BURST * FLOOD_BURSTS_MAX, f"wireguard-go not under load after {flood_sent} initiations")
        for _ in range(FLOOD_BURST):
            link.send(flood)
        flood_sent += FLOOD_BURST
        next_for(None, "a cookie reply to the flood", wait_s=0.05)
    print(f"under load after {flood_sent} initiations", flush=True)

    # 2. the first initiation and wireguard-go's cookie reply
    first_ts = tai64n_now()
    _, first = make_initiation(inputs, inputs["first_ephemeral_private"], first_index, first_ts, wg_public)
    link.send(first)
    reply = next_for(first_index, "the cookie reply to the first initiation")
    expect(reply[0] == MSG_COOKIE_REPLY, "the first initiation got no cookie reply: wireguard-go was not under load")
    cookie = open_cookie_reply(reply, first[INIT_MAC1:INIT_MAC2], wg_public)

    # 3. the second initiation with a wrong and with the right mac2
    second_ts = tai64n_now()
    for _ in range(5):                  # a TAI64N timestamp moves in steps of 2^24 ns (~17 ms)
        if second_ts > first_ts:
            break
        time.sleep(0.02)
        second_ts = tai64n_now()
    expect(second_ts > first_ts, "the clock did not move")
    hs, second = make_initiation(inputs, inputs["second_ephemeral_private"], second_index, second_ts, wg_public)
    good = second[:INIT_MAC2] + MAC(cookie, second[:INIT_MAC2])
    wrong = second[:INIT_MAC2] + MAC(bytes(COOKIE_LEN), second[:INIT_MAC2])
    link.send(wrong)
    link.send(good)
    second_reply = response = None
    while second_reply is None or response is None:
        msg = next_for(second_index, "the answers to the second initiation")
        if msg[0] == MSG_COOKIE_REPLY and second_reply is None:
            second_reply = msg
        elif msg[0] == MSG_RESPONSE and response is None:
            response = msg
        else:
            raise Failure(f"a second type {msg[0]} answer to the second initiation")
    expect(open_cookie_reply(second_reply, second[INIT_MAC1:INIT_MAC2], wg_public) == cookie,
           "the second cookie differs from the first")
    expect(len(response) == RESPONSE_LEN and response[:4] == header(MSG_RESPONSE), "malformed response")
    expect(response[60:76] == mac1(response[:60], public_key(inputs["python_private"])), "response: bad mac1")
    expect(response[76:] == bytes(MAC_LEN), "response: mac2 is not zero")
    expect(hs.read_message(response[12:60]) == b"", "response: payload not empty")

    # 4. data both ways
    plain = pad16(echo_request())
    data = header(MSG_DATA) + response[4:8] + struct.pack("<Q", 0) + ENCRYPT(hs.c1.k, 0, b"", plain)
    link.send(data)
    received = []
    while not received or not received[-1]["plaintext"]:
        msg = next_for(second_index, "wireguard-go's echo reply")
        expect(msg[0] == MSG_DATA and len(msg) >= DATA_MIN_LEN, f"type {msg[0]} instead of data")
        counter = struct.unpack("<Q", msg[8:16])[0]
        received.append({"message": msg, "plaintext": DECRYPT(hs.c2.k, counter, b"", msg[16:])})
        expect(len(received) < 8, "no echo reply among wireguard-go's data messages")
        if is_echo_reply(received[-1]["plaintext"]):
            break
    expect(is_echo_reply(received[-1]["plaintext"]), "wireguard-go's data is not our echo reply")
    link.close()

    record = {k: v for k, v in inputs.items() if not k.endswith("_index")}
    record.update(name=INITIATOR_RUN, wireguard_go_public=wg_public, python_public=public_key(inputs["python_private"]),
                  first_index=struct.pack(">I", first_index), second_index=struct.pack(">I", second_index),
                  flood_initiation=flood, flood_sent=str(flood_sent), first_timestamp=first_ts, first_initiation=first,
                  cookie_reply=reply, cookie=cookie, second_timestamp=second_ts, second_initiation=good,
                  second_initiation_wrong_mac2=wrong, second_cookie_reply=second_reply, response=response,
                  transport_initiator_to_responder=hs.c1.k, transport_responder_to_initiator=hs.c2.k,
                  data_to_wireguard_go=[{"message": data, "plaintext": plain}], data_from_wireguard_go=received)
    Path(out_path).write_text(json.dumps(to_hex(record), indent=1) + "\n")
    print(f"run {INITIATOR_RUN}: cookie replies to {flood_replies} of {flood_sent} flood initiations; "
          f"captured {len(received)} data messages from wireguard-go", flush=True)


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
    inputs = initiator_inputs() if run == INITIATOR_RUN else run_inputs(run)
    psk = inputs["psk"] if run == INITIATOR_RUN or inputs["psk_configured"] else None
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    print(f"WG_GO_PRIVATE={b64(inputs['wireguard_go_private'])}")
    print(f"PY_PUBLIC={b64(public_key(inputs['python_private']))}")
    print(f"PSK={b64(psk) if psk else ''}")


# The order of a run's members in the capture file: inputs first, then the messages in turn.
RUN_ORDER = ["name", "wireguard_go_private", "wireguard_go_public", "python_private", "python_public",
             "python_ephemeral_private", "psk_configured", "psk", "responder_index", "cookie_secret",
             "cookie_source", "cookie", "cookie_nonce", "initiation_unix_time", "initiation",
             "initiation_timestamp", "cookie_reply", "retry_initiation", "retry_timestamp", "response",
             "transport_initiator_to_responder", "transport_responder_to_initiator", "data_from_wireguard_go",
             "data_to_wireguard_go"]


def merge(source, out, parts):
    runs, initiator = [], None
    for part in parts:
        run = json.loads(Path(part).read_text())
        if run["name"] == INITIATOR_RUN:
            initiator = run
            continue
        assert set(run) == set(RUN_ORDER), f"{part}: members {sorted(set(run) ^ set(RUN_ORDER))}"
        runs.append({k: run[k] for k in RUN_ORDER})
    doc = {
        "source": source,
        "format": "hex strings; indices big-endian hex; every message as the UDP payload on the wire; "
                  "psk is 32 zero bytes when psk_configured is no (as WireGuard)",
        "runs": runs,
        "wireguard_go_responds": initiator,
    }
    Path(out).write_text(json.dumps(doc, indent=1) + "\n")


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "keys" and argv[2] in RUNS:
            keys(argv[2])
        elif len(argv) == 3 and argv[1] == "keys" and argv[2] == INITIATOR_RUN:
            keys(argv[2])
        elif len(argv) == 4 and argv[1] == "respond" and argv[2] in RUNS:
            respond(argv[2], argv[3])
        elif len(argv) == 3 and argv[1] == "initiate":
            initiate(argv[2])
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
