/* Whether a candidate endpoint a node reports is one other nodes may dial. Pure, no state:
 * the coordinator filters what it stores and pushes, and a node can filter what it is
 * told with the same rules.
 *
 * Refused: port 0; unspecified (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), link-local
 * (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4, ff00::/8), the limited broadcast
 * and the rest of 240.0.0.0/4 (reserved, never a unicast host). An IPv4-mapped IPv6
 * address (::ffff:a.b.c.d) is judged as the IPv4 address it carries. Private ranges
 * (10/8, 192.168/16, fc00::/7, 100.64/10) stay dialable: two nodes on one LAN or behind
 * one CGNAT reach each other that way. A node that wants link-local candidates for peers
 * on its own link (the node side) applies that exception itself. */
#ifndef MESHD_ENDPOINT_CHECK_H
#define MESHD_ENDPOINT_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "control.h"

/* An AF_INET or AF_INET6 address; any other family is not dialable. */
bool endpoint_is_dialable(const struct sockaddr *sa);
/* The same rules for the control protocol's form (family 4 or 6, address, port). */
bool control_endpoint_is_dialable(const struct control_endpoint *ep);

#endif
