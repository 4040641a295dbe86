#!/usr/bin/env python3
"""A stand-in for systemd's notify socket (sd_notify(3)) for tests/netns/readiness.sh.

usage: notifylisten.py SOCKET LOG [CHECK...]

Binds a datagram socket at SOCKET ('@name': the abstract namespace, as systemd allows) and
appends each message to LOG as one line: milliseconds since start, then the message with
its newlines shown as '|'. When a message holds READY=1 and a CHECK command was given, it
runs the command at once and logs 'CHECK ok' or 'CHECK failed': what was true at the moment
the daemon said it was ready. Runs until killed.
"""
import socket
import subprocess
import sys
import time


def main():
    path, log = sys.argv[1], sys.argv[2]
    check = sys.argv[3:]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + path[1:] if path.startswith("@") else path)
    start = time.monotonic()
    with open(log, "a", buffering=1) as out:
        out.write("listening\n")
        while True:
            msg = sock.recv(4096).decode("utf-8", "replace")
            ms = int((time.monotonic() - start) * 1000)
            out.write("%d %s\n" % (ms, msg.replace("\n", "|")))
            if check and "READY=1" in msg.split("\n"):
                rc = subprocess.run(check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
                out.write("CHECK %s\n" % ("ok" if rc == 0 else "failed"))


if __name__ == "__main__":
    main()
