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
#include "meshd/peer.h"

struct device;
struct peer;

/* The coordinator's full list: new satellites are added, changed ones replaced (a new
 * handshake), missing ones removed with their sessions at once. */
void satellites_apply(struct device *dev, const struct control_satellites *list);

/* A decrypted packet from peer `from` that passed cryptokey routing (call only while
 * n_satellites > 0): a satellite's DNS query is answered here (*done set); otherwise the
 * peer it is forwarded to when it is for or from a satellite (and not back to `from`), or
 * NULL: it goes to the TUN as usual. */
struct peer *satellites_rx(struct device *dev, struct peer *from, uint8_t *pkt, const struct ip_packet_info *info,
			   uint64_t now_ms, bool *done);

/* Whether the access rules here judge a packet from `from` forwarded to `to`: not when a
 * satellite sends to a mesh node, which judges it itself (as traffic from a subnet is
 * judged at its destination); yes toward a satellite (we hold its rules). */
static inline bool satellites_acl_here(const struct peer *from, const struct peer *to)
{
	return !(to && from->satellite && !to->satellite);
}

/* Sends a packet that satellites_rx routed to `to` (after the access rules). */
void satellites_forward(struct device *dev, struct peer *from, struct peer *to, const uint8_t *pkt,
			const struct ip_packet_info *info, uint64_t now_ms);

/* PEER_SATELLITES: the names of the satellites behind a coordinator peer (its gateway), for
 * DNS and status. Entries whose addresses are outside the overlay are dropped. */
void satellites_behind(struct device *dev, const struct control_peer_satellites *m);

/* The satellite that owns an address, or NULL: for DNS answers to a satellite. */
struct peer *satellites_owner(struct device *dev, int family, const uint8_t *addr);

#endif
