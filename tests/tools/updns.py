#!/usr/bin/env python3
"""A tiny upstream DNS server for tests/netns/dns.sh: answers www.example.org A with ANSWER
(default 192.0.2.99), never answers slow.example.org (a timeout), and says NXDOMAIN to
everything else; logs each question (lower case) to a file, so the test can see what meshd
forwarded and what it kept.

usage: updns.py ADDRESS LOGFILE [ANSWER]"""
import socket
import struct
import sys


def main():
    addr, logfile = sys.argv[1], sys.argv[2]
    answer = bytes(int(b) for b in (sys.argv[3] if len(sys.argv) > 3 else "192.0.2.99").split("."))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 53))
    with open(logfile, "a", buffering=1) as log:
        while True:
            data, src = s.recvfrom(4096)
            try:
                qid, _flags, qd = struct.unpack(">HHH", data[:6])
                i, labels = 12, []
                while data[i]:
                    n = data[i]
                    labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace").lower())
                    i += 1 + n
                qtype, _qclass = struct.unpack(">HH", data[i + 1:i + 5])
                question = data[12:i + 5]
            except (IndexError, struct.error):
                continue
            name = ".".join(labels)
            log.write("%s %d\n" % (name, qtype))
            if name == "slow.example.org":
                continue
            if name == "www.example.org" and qtype == 1:
                rcode, answers = 0, b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + answer
                ancount = 1
            else:
                rcode, answers, ancount = 3, b"", 0
            header = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, ancount, 0, 0)
            s.sendto(header + question + answers, src)


if __name__ == "__main__":
    main()
