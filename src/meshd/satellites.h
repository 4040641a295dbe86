/* Satellites on their gateway: stock WireGuard devices (phones) that the coordinator assigns
 * to this node (CONTROL_MSG_SATELLITES). Each becomes a static WireGuard peer owning its two
 * overlay addresses, with no endpoint: it reaches us, we answer on our UDP port, and its
 * endpoint follows its authenticated packets as any static peer's does. It speaks no disco
 * and no relay.
 *
 * Forwarding happens here, inside meshd, not through the kernel: a packet from a satellite to
 * another peer (or from a peer to a satellite) is re-encrypted to that peer right after it
 * was decrypted and passed the access rules. So a gateway needs no ip_forward, no firewall
 * rule and no route of its own, the kernel sends no ICMP redirects for traffic that enters
 * and leaves by one interface, and the access rules see every forwarded packet once in each
 * direction (acl_allow_rx on the way in, acl_note_tx on the way out, as for our own flows).
 * The mesh's DNS address (100.100.100.100) is answered here for satellites too. */
#ifndef MESHD_SATELLITES_H
#define MESHD_SATELLITES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ipaddr.h"

struct device;
struct peer;

/* The coordinator's full list: new satellites are added, changed ones replaced (a new
 * handshake), missing ones removed with their sessions at once. */
void satellites_apply(struct device *dev, const struct control_satellites *list);

/* A decrypted packet from peer `from` that passed cryptokey routing and the access rules:
 * true when it was for or from a satellite and went on to its peer (or to DNS) here. */
bool satellites_forward(struct device *dev, struct peer *from, uint8_t *pkt, const struct ip_packet_info *info,
			uint64_t now_ms);

/* The satellite that owns an address, or NULL: for DNS answers to a satellite. */
struct peer *satellites_owner(struct device *dev, int family, const uint8_t *addr);

#endif
