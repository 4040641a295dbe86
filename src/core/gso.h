/* TUN offloads, send side: the virtio-net header that IFF_VNET_HDR puts in front of every
 * packet, Internet checksums, and the split of a TCP (TSO) or UDP (USO) super-packet into
 * the MTU-sized packets the stack would have sent without the offload.
 *
 * Pure functions over caller buffers with explicit lengths: every bound is checked, and
 * nothing here knows about sessions or sockets (tests and the fuzzer call it directly).
 *
 * The rules followed are the virtio spec's (1.2, 5.1.6.2 "Packet Transmission") as Linux
 * applies them to a TUN device (include/linux/virtio_net.h): with NEEDS_CSUM, the 16-bit
 * field at csum_start + csum_offset holds the folded, not complemented, sum of the
 * pseudo-header, and the checksum is completed over the bytes from csum_start to the end. */
#ifndef MESHD_GSO_H
#define MESHD_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	VNET_HDR_LEN = 10, /* struct virtio_net_hdr: no num_buffers, TUNSETVNETHDRSZ left at its default */
	VNET_F_NEEDS_CSUM = 1,     /* VIRTIO_NET_HDR_F_NEEDS_CSUM: csum_start/offset are set */
	VNET_GSO_NONE = 0,         /* VIRTIO_NET_HDR_GSO_NONE */
	VNET_GSO_TCPV4 = 1,        /* VIRTIO_NET_HDR_GSO_TCPV4 */
	VNET_GSO_TCPV6 = 4,        /* VIRTIO_NET_HDR_GSO_TCPV6 */
	VNET_GSO_UDP_L4 = 5,       /* VIRTIO_NET_HDR_GSO_UDP_L4 (USO, Linux 6.2); older headers lack it */
	VNET_GSO_ECN = 0x80,       /* VIRTIO_NET_HDR_GSO_ECN: a flag on top of the type */
	GSO_MAX_PACKET = 65535,    /* an IPv4 total length / IPv6 payload length is 16 bits */
	TCP_HEADER_MIN_LEN = 20,
	UDP_HEADER_LEN = 8,
	TCP_CSUM_OFFSET = 16,      /* where the checksum sits in a TCP header */
	UDP_CSUM_OFFSET = 6,       /* and in a UDP header */
	IPPROTO_TCP_NUM = 6,       /* <netinet/in.h> names, without pulling in sockets */
	IPPROTO_UDP_NUM = 17,
};

/* TCP flag bits (byte 13 of the header). */
enum {
	TCP_FLAG_FIN = 0x01,
	TCP_FLAG_SYN = 0x02,
	TCP_FLAG_RST = 0x04,
	TCP_FLAG_PSH = 0x08,
	TCP_FLAG_ACK = 0x10,
	TCP_FLAG_URG = 0x20,
	TCP_FLAG_ECE = 0x40,
	TCP_FLAG_CWR = 0x80,
};

/* struct virtio_net_hdr in host order (a TUN device uses the host's byte order unless
 * TUNSETVNETLE/BE says otherwise, and we never set those). */
struct vnet_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

bool vnet_hdr_decode(const uint8_t *buf, size_t len, struct vnet_hdr *out);
void vnet_hdr_encode(const struct vnet_hdr *h, uint8_t out[VNET_HDR_LEN]);

/* One's-complement sum of buf (big-endian 16-bit words, an odd last byte padded with
 * zero) added to sum, not folded. */
uint64_t csum_add(uint64_t sum, const uint8_t *buf, size_t len);
/* Folds a sum to 16 bits (not complemented). */
uint16_t csum_fold(uint64_t sum);
/* The unfolded sum of an IPv4 (addr_len 4) or IPv6 (16) pseudo-header; src and dst are
 * adjacent in both headers, so one pointer to src suffices. */
uint64_t csum_pseudo(const uint8_t *src_dst, size_t addr_len, uint8_t proto, uint32_t l4_len);
/* Writes a correct IPv4 header checksum over ihl_len bytes. */
void csum_ipv4_header(uint8_t *iph, size_t ihl_len);

/* A packet read from the TUN, checked and ready to be split. */
struct gso_plan {
	int family;            /* AF_INET or AF_INET6 */
	bool needs_csum;       /* finish the checksum at csum_start + csum_offset */
	uint8_t proto;         /* IPPROTO_TCP_NUM or IPPROTO_UDP_NUM for a GSO packet, else 0 */
	size_t ip_len;         /* bytes before the transport header (csum_start) */
	size_t hdr_len;        /* IP plus transport header, copied into every segment */
	size_t csum_start, csum_offset;
	size_t payload_len;    /* bytes after hdr_len */
	size_t gso_size;       /* payload bytes per segment (the last may be shorter) */
	size_t n_segments;     /* 1 for a packet that needs no split */
	size_t len;            /* the whole packet */
};

/* Checks the virtio header against the packet (pkt, len: what follows the header) and
 * plans the split. False for anything inconsistent: unknown GSO type, wrong IP version,
 * checksum position outside the packet, transport header cut short. */
bool gso_plan_make(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, struct gso_plan *plan);
/* Writes segment i (< n_segments) of pkt into out: headers fixed up (lengths, IPv4 ID and
 * header checksum, TCP sequence number, FIN/PSH only on the last segment, CWR only on the
 * first), transport checksum complete. Returns its length, or 0 if cap is too small. */
size_t gso_segment(const struct gso_plan *plan, const uint8_t *pkt, size_t i, uint8_t *out, size_t cap);

#endif
