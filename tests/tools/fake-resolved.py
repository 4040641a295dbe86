#!/usr/bin/env python3
"""A stand-in for systemd-resolved on a private bus, for tests/netns/dns.sh: owns
org.freedesktop.resolve1 and logs every Manager call meshd makes, one line each, e.g.
  SetLinkDNS 5 2:100.100.100.100 10:fd12::6464:6464
  SetLinkDomains 5 mesh.internal:routing
  SetLinkDefaultRoute 5 false
  RevertLink 5

usage: fake-resolved.py LOGFILE   (DBUS_SYSTEM_BUS_ADDRESS names the bus)"""
import ipaddress
import sys

import dbus
import dbus.service
from dbus.mainloop.glib import DBusGMainLoop
from gi.repository import GLib

IFACE = "org.freedesktop.resolve1.Manager"


class Manager(dbus.service.Object):
    def __init__(self, bus, log):
        super().__init__(bus, "/org/freedesktop/resolve1")
        self.log = log

    def note(self, *words):
        self.log.write(" ".join(str(w) for w in words) + "\n")

    @dbus.service.method(IFACE, in_signature="ia(iay)")
    def SetLinkDNS(self, ifindex, addrs):
        self.note("SetLinkDNS", ifindex,
                  *["%d:%s" % (f, ipaddress.ip_address(bytes(a))) for f, a in addrs])

    @dbus.service.method(IFACE, in_signature="ia(sb)")
    def SetLinkDomains(self, ifindex, domains):
        self.note("SetLinkDomains", ifindex,
                  *["%s:%s" % (d, "routing" if r else "search") for d, r in domains])

    @dbus.service.method(IFACE, in_signature="ib")
    def SetLinkDefaultRoute(self, ifindex, enable):
        self.note("SetLinkDefaultRoute", ifindex, "true" if enable else "false")

    @dbus.service.method(IFACE, in_signature="i")
    def RevertLink(self, ifindex):
        self.note("RevertLink", ifindex)


def main():
    DBusGMainLoop(set_as_default=True)
    bus = dbus.SystemBus()
    with open(sys.argv[1], "a", buffering=1) as log:
        name = dbus.service.BusName("org.freedesktop.resolve1", bus)
        Manager(bus, log)
        log.write("ready\n")
        GLib.MainLoop().run()
        del name  # held until here: dropping it would release the name


if __name__ == "__main__":
    main()
