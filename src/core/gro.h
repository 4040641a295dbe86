/* TUN offloads, receive side: decrypted packets of one TCP flow that continue each other
 * are written to the TUN as one super-packet with a GSO_TCPV4/6 virtio header, so the
 * kernel handles one packet where it would handle forty (wireguard-go's tcpGRO since
 * 2023 does the same; Linux's own tcp_gro_receive sets the rules followed here). Datagrams
 * of one UDP flow of the same size (the last may be shorter) become one GSO_UDP_L4
 * super-packet when the TUN took USO (Linux 6.2): the kernel splits it back into the same
 * datagrams before a socket sees them (udp_rcv_segment), after one trip up the stack.
 *
 * A pure planner: it never copies payload. It links packets into groups and rewrites the
 * head packet's headers; the writer sends the head whole and every further member's
 * payload after it (one writev). Conservative by design: only packets with ACK (and PSH
 * on the last), the same ACK number, window, options and IP header fields (IPv4's header
 * checksum correct) join; anything else goes out as it came, in order within its flow.
 *
 * TCP and UDP checksums are not verified before joining (~6 % of a receiving meshd's CPU):
 * every packet here passed Poly1305 under its peer's session key, so nothing between the
 * peers changed a bit of it, and the kernel takes a super-packet's payload as checksummed.
 * Kernel WireGuard goes further and marks every decrypted packet CHECKSUM_UNNECESSARY. What
 * is given up: a packet the sending host itself built with a wrong checksum is delivered
 * when it joins a group, instead of dropped (a lone packet is still checked by the kernel). */
#ifndef MESHD_GRO_H
#define MESHD_GRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/gso.h"

enum {
	GRO_MAX_PACKETS = 64,   /* packets planned at once: one receive batch (DEVICE_BATCH) */
	GRO_NO_NEXT = 0xffff,   /* end of a group's member list */
};

/* One decrypted packet: len is its IP length (already checked by ip_packet_parse). */
struct gro_packet {
	uint8_t *data;
	size_t len;
};

/* One write: the head packet whole, then each further member from hdr_skip on. */
struct gro_output {
	struct vnet_hdr hdr;  /* GSO_NONE for a lone packet */
	uint16_t head;        /* index into the packets */
	uint16_t n_members;
	size_t hdr_skip;      /* header bytes of later members not written (their payload follows) */
	size_t total_len;     /* bytes written after the virtio header */
};

struct gro_plan {
	struct gro_output out[GRO_MAX_PACKETS];
	uint16_t next[GRO_MAX_PACKETS]; /* member list: next[i] follows packet i, or GRO_NO_NEXT */
	size_t n_out;
};

/* Plans the writes for n (<= GRO_MAX_PACKETS) packets in arrival order; UDP datagrams are
 * grouped only with coalesce_udp (the TUN accepts GSO_UDP_L4 writes). Head packets of
 * groups are modified (lengths, IPv4 header checksum, PSH, the transport checksum field
 * becomes the pseudo-header sum for NEEDS_CSUM). Returns false only when n is too large. */
bool gro_plan_make(struct gro_packet *pkts, size_t n, bool coalesce_udp, struct gro_plan *plan);

#endif
