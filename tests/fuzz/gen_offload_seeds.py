#!/usr/bin/env python3
"""Writes the fuzz_offload seed corpus: TUN reads with a virtio-net header (host order,
little-endian here) in front of TCP/UDP super-packets, as a TUN with offloads returns them.
Usage: gen_offload_seeds.py DIR"""
import os
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def packet(v6, udp, payload, ip_opts=b"", tcp_opts=b"", flags=0x18):
    body = bytes((i * 7 + 3) & 0xFF for i in range(payload))
    if udp:
        l4 = struct.pack("!HHHH", 5000, 5201, 8 + payload, 0)
    else:
        doff = (20 + len(tcp_opts)) // 4
        l4 = struct.pack("!HHIIBBHHH", 40000, 5201, 1000, 0x11223344, doff << 4, flags, 512, 0, 0) + tcp_opts
    l4len = len(l4) + payload
    proto = 17 if udp else 6
    if v6:
        src, dst = bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02")
        ip = struct.pack("!IHBB", 0x60000000, l4len, proto, 64) + src + dst
        pseudo = src + dst + struct.pack("!IxxxB", l4len, proto)
    else:
        src, dst = bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])
        ihl = (20 + len(ip_opts)) // 4
        ip = struct.pack("!BBHHHBBH", 0x40 | ihl, 0, ihl * 4 + l4len, 0x1234, 0x4000, 64, proto, 0) + src + dst + ip_opts
        ip = ip[:10] + struct.pack("!H", 0xFFFF ^ csum(ip)) + ip[12:]
        pseudo = src + dst + struct.pack("!xBH", proto, l4len)
    off = 6 if udp else 16
    l4 = l4[:off] + struct.pack("!H", csum(pseudo)) + l4[off + 2:]
    return ip, l4, off, ip + l4 + body


def seed(v6, udp, payload, gso_size, gso_type=None, **kw):
    ip, l4, off, pkt = packet(v6, udp, payload, **kw)
    if gso_type is None:
        gso_type = 5 if udp else (4 if v6 else 1)
    hdr = struct.pack("<BBHHHH", 1, gso_type, len(ip) + len(l4), gso_size, len(ip), off)
    return hdr + pkt


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    seeds = {
        "tcp4-tso": seed(False, False, 10000, 1380),
        "tcp6-tso": seed(True, False, 20000, 1360, flags=0x19),
        "tcp4-options": seed(False, False, 5200, 1300, ip_opts=b"\1\1\1\0", tcp_opts=b"\1\1\x08\x0a" + b"\0" * 8),
        "udp4-uso": seed(False, True, 3000, 1200),
        "udp6-uso": seed(True, True, 1201, 1200),
        "udp4-csum-only": seed(False, True, 333, 0, gso_type=0),
        "tcp4-plain": struct.pack("<BBHHHH", 0, 0, 0, 0, 0, 0) + packet(False, False, 100)[3],
        "tcp4-gso-on-v6-type": seed(False, False, 3000, 1000, gso_type=4),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
