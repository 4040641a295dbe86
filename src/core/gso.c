/* TUN offloads, send side: see gso.h. The split mirrors what Linux's tcp_gso_segment and
 * udp4_ufo_fragment/__udp_gso_segment produce, so that the peer sees the same packets
 * it would have seen from a TUN without offloads. */
#include "core/gso.h"

#include <string.h>
#include <sys/socket.h>

#include "core/bytes.h"

enum {
	IPV4_MIN_HDR = 20,
	IPV6_HDR = 40,
	IPV4_OFF_TOTAL_LEN = 2,
	IPV4_OFF_ID = 4,
	IPV4_OFF_PROTO = 9,
	IPV4_OFF_CSUM = 10,
	IPV4_OFF_SRC = 12,
	IPV6_OFF_PAYLOAD_LEN = 4,
	IPV6_OFF_SRC = 8,
	TCP_OFF_SEQ = 4,
	TCP_OFF_DOFF = 12,
	TCP_OFF_FLAGS = 13,
	UDP_OFF_LEN = 4,
};

bool vnet_hdr_decode(const uint8_t *buf, size_t len, struct vnet_hdr *out)
{
	if (len < VNET_HDR_LEN)
		return false;
	out->flags = buf[0];
	out->gso_type = buf[1];
	memcpy(&out->hdr_len, buf + 2, 2);
	memcpy(&out->gso_size, buf + 4, 2);
	memcpy(&out->csum_start, buf + 6, 2);
	memcpy(&out->csum_offset, buf + 8, 2);
	return true;
}

void vnet_hdr_encode(const struct vnet_hdr *h, uint8_t out[VNET_HDR_LEN])
{
	out[0] = h->flags;
	out[1] = h->gso_type;
	memcpy(out + 2, &h->hdr_len, 2);
	memcpy(out + 4, &h->gso_size, 2);
	memcpy(out + 6, &h->csum_start, 2);
	memcpy(out + 8, &h->csum_offset, 2);
}

/* Folds a 64-bit one's-complement sum to 16 bits without the final complement. */
static uint16_t fold64(uint64_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint64_t csum_add(uint64_t sum, const uint8_t *buf, size_t len)
{
	/* Every byte of every packet passes here twice, so 32-bit words in the host's order
	 * go into a 64-bit accumulator (2^32 words before it could overflow): the
	 * one's-complement sum does not depend on byte order up to a swap of the folded
	 * result (RFC 1071, 2.(B)). The tail goes word by word in network order. */
	uint64_t acc = 0;
	size_t i = 0;
	for (; i + 4 <= len; i += 4) {
		uint32_t w;
		memcpy(&w, buf + i, sizeof(w));
		acc += w;
	}
	uint16_t folded = fold64(acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	folded = (uint16_t)(folded >> 8 | folded << 8);
#endif
	sum += folded;
	for (; i + 1 < len; i += 2)
		sum += get16(buf + i);
	if (i < len)
		sum += (uint64_t)buf[i] << 8;
	return sum;
}

uint16_t csum_fold(uint64_t sum)
{
	return fold64(sum);
}

uint64_t csum_pseudo(const uint8_t *src_dst, size_t addr_len, uint8_t proto, uint32_t l4_len)
{
	uint64_t sum = csum_add(0, src_dst, 2 * addr_len);
	return sum + proto + (l4_len >> 16) + (l4_len & 0xffff);
}

void csum_ipv4_header(uint8_t *iph, size_t ihl_len)
{
	put16(iph + IPV4_OFF_CSUM, 0);
	put16(iph + IPV4_OFF_CSUM, (uint16_t)~csum_fold(csum_add(0, iph, ihl_len)));
}

/* The IP header in front of the transport header: version against the GSO type, IPv4
 * header length and protocol. */
static bool plan_ip(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, struct gso_plan *plan)
{
	if (len < 1)
		return false;
	unsigned int version = pkt[0] >> 4;
	uint8_t gso = h->gso_type & (uint8_t)~VNET_GSO_ECN;
	if (version == 4) {
		if (len < IPV4_MIN_HDR || plan->ip_len < (size_t)(pkt[0] & 0x0f) * 4 || (pkt[0] & 0x0f) < 5)
			return false;
		if (gso == VNET_GSO_TCPV6)
			return false;
		plan->family = AF_INET;
		return gso == VNET_GSO_NONE || pkt[IPV4_OFF_PROTO] == plan->proto;
	}
	if (version == 6) {
		/* Extension headers may sit between: csum_start says where TCP/UDP begins. */
		if (len < IPV6_HDR || plan->ip_len < IPV6_HDR || gso == VNET_GSO_TCPV4)
			return false;
		plan->family = AF_INET6;
		return true;
	}
	return false;
}

bool gso_plan_make(const struct vnet_hdr *h, const uint8_t *pkt, size_t len, struct gso_plan *plan)
{
	memset(plan, 0, sizeof(*plan));
	if (len > GSO_MAX_PACKET + IPV6_HDR)
		return false;
	plan->len = len;
	plan->n_segments = 1;
	plan->needs_csum = h->flags & VNET_F_NEEDS_CSUM;
	plan->csum_start = h->csum_start;
	plan->csum_offset = h->csum_offset;
	plan->ip_len = h->csum_start;
	if (plan->needs_csum && (plan->csum_start > len || len - plan->csum_start < plan->csum_offset + 2))
		return false;

	uint8_t gso = h->gso_type & (uint8_t)~VNET_GSO_ECN;
	if (gso == VNET_GSO_NONE) {
		plan->hdr_len = len;
		/* Only the checksum may need work; the IP header is checked later, as always. */
		if (len < 1 || ((pkt[0] >> 4) != 4 && (pkt[0] >> 4) != 6))
			return false;
		plan->family = (pkt[0] >> 4) == 4 ? AF_INET : AF_INET6;
		return true;
	}
	if (!plan->needs_csum || h->gso_size == 0)
		return false; /* a GSO packet always leaves the checksum to us */
	if (gso == VNET_GSO_TCPV4 || gso == VNET_GSO_TCPV6) {
		plan->proto = IPPROTO_TCP_NUM;
		if (plan->csum_offset != TCP_CSUM_OFFSET || len - plan->csum_start < TCP_HEADER_MIN_LEN)
			return false;
		size_t doff = (size_t)(pkt[plan->csum_start + TCP_OFF_DOFF] >> 4) * 4;
		if (doff < TCP_HEADER_MIN_LEN || len - plan->csum_start < doff)
			return false;
		plan->hdr_len = plan->csum_start + doff; /* the header's hdr_len is only a hint */
	} else if (gso == VNET_GSO_UDP_L4) {
		plan->proto = IPPROTO_UDP_NUM;
		if (plan->csum_offset != UDP_CSUM_OFFSET || len - plan->csum_start < UDP_HEADER_LEN)
			return false;
		plan->hdr_len = plan->csum_start + UDP_HEADER_LEN;
	} else {
		return false;
	}
	if (!plan_ip(h, pkt, len, plan))
		return false;
	plan->gso_size = h->gso_size;
	plan->payload_len = len - plan->hdr_len;
	if (plan->payload_len > 0)
		plan->n_segments = (plan->payload_len + plan->gso_size - 1) / plan->gso_size;
	return true;
}

/* Completes the checksum that starts at csum_start of a packet of len bytes whose field
 * already holds the pseudo-header sum (virtio's NEEDS_CSUM contract). */
static void finish_partial_csum(uint8_t *pkt, size_t len, size_t start, size_t offset, bool udp)
{
	uint16_t c = (uint16_t)~csum_fold(csum_add(0, pkt + start, len - start));
	if (udp && c == 0)
		c = 0xffff; /* RFC 768: zero means "no checksum" */
	put16(pkt + start + offset, c);
}

size_t gso_segment(const struct gso_plan *plan, const uint8_t *pkt, size_t i, uint8_t *out, size_t cap)
{
	if (i >= plan->n_segments)
		return 0;
	if (plan->proto == 0) {
		if (cap < plan->len)
			return 0;
		memcpy(out, pkt, plan->len);
		if (plan->needs_csum)
			finish_partial_csum(out, plan->len, plan->csum_start, plan->csum_offset,
					    plan->csum_offset == UDP_CSUM_OFFSET);
		return plan->len;
	}

	size_t off = i * plan->gso_size;
	size_t seg = plan->payload_len - off < plan->gso_size ? plan->payload_len - off : plan->gso_size;
	size_t total = plan->hdr_len + seg;
	size_t l4_len = total - plan->ip_len;
	bool last = i + 1 == plan->n_segments;
	if (cap < total)
		return 0;
	memcpy(out, pkt, plan->hdr_len);
	memcpy(out + plan->hdr_len, pkt + plan->hdr_len + off, seg);

	const uint8_t *addrs;
	size_t addr_len;
	if (plan->family == AF_INET) {
		size_t ihl = (size_t)(out[0] & 0x0f) * 4;
		put16(out + IPV4_OFF_TOTAL_LEN, (uint16_t)total);
		put16(out + IPV4_OFF_ID, (uint16_t)(get16(pkt + IPV4_OFF_ID) + i));
		csum_ipv4_header(out, ihl);
		addrs = out + IPV4_OFF_SRC;
		addr_len = 4;
	} else {
		put16(out + IPV6_OFF_PAYLOAD_LEN, (uint16_t)(total - IPV6_HDR));
		addrs = out + IPV6_OFF_SRC;
		addr_len = 16;
	}

	uint8_t *l4 = out + plan->ip_len;
	if (plan->proto == IPPROTO_TCP_NUM) {
		put32(l4 + TCP_OFF_SEQ, get32(pkt + plan->ip_len + TCP_OFF_SEQ) + (uint32_t)off);
		if (!last)
			l4[TCP_OFF_FLAGS] &= (uint8_t)~(TCP_FLAG_FIN | TCP_FLAG_PSH);
		if (i > 0)
			l4[TCP_OFF_FLAGS] &= (uint8_t)~TCP_FLAG_CWR;
	} else {
		put16(l4 + UDP_OFF_LEN, (uint16_t)l4_len);
	}
	/* The kernel's pseudo-header sum covered the whole super-packet's length: start over. */
	put16(l4 + plan->csum_offset, csum_fold(csum_pseudo(addrs, addr_len, plan->proto, (uint32_t)l4_len)));
	finish_partial_csum(out, total, plan->ip_len, plan->csum_offset, plan->proto == IPPROTO_UDP_NUM);
	return total;
}
