/* TUN offloads, receive side: see gro.h.
 *
 * Strategy: walk the packets in order. Each TCP or UDP packet is looked up by its flow
 * (protocol, addresses and ports) among the outputs planned so far, newest first; only the
 * newest output of a flow may grow, so order within a flow never changes. A packet joins it
 * when it continues the flow exactly (TCP: the next sequence number; UDP: the next datagram,
 * no longer than the head's) and looks like the head in every other way; otherwise it
 * starts a new output (and becomes the flow's newest). */
#include "core/gro.h"

#include <string.h>
#include <sys/socket.h>

#include "core/bytes.h"

enum {
	IPV4_OFF_TOS = 1,
	IPV4_OFF_TOTAL_LEN = 2,
	IPV4_OFF_FRAG = 6,
	IPV4_OFF_TTL = 8,
	IPV4_OFF_PROTO = 9,
	IPV4_OFF_SRC = 12,
	IPV6_HDR = 40,
	IPV6_OFF_PAYLOAD_LEN = 4,
	IPV6_OFF_NEXT = 6,
	IPV6_OFF_HOPS = 7,
	IPV6_OFF_SRC = 8,
	TCP_OFF_SEQ = 4,
	TCP_OFF_ACK = 8,
	TCP_OFF_DOFF = 12,
	TCP_OFF_FLAGS = 13,
	TCP_OFF_WINDOW = 14,
	UDP_OFF_LEN = 4,
	IPV4_DF = 0x4000, /* the only fragment bit a coalescable packet may carry */
	/* Datagrams in one UDP super-packet: the kernel refuses more (UDP_MAX_SEGMENTS, 64
	 * before Linux 6.9); a receive batch holds no more anyway. */
	GRO_UDP_MAX_SEGMENTS = 64,
};

/* What the planner knows of one TCP or UDP packet. */
struct l4_view {
	uint8_t proto;  /* IPPROTO_TCP_NUM, IPPROTO_UDP_NUM, or 0: neither, passes alone */
	bool eligible;  /* may head or join a group */
	int family;
	size_t ip_len, l4_len, payload_len; /* l4_len: the TCP or UDP header's */
	uint32_t seq;   /* TCP only */
	uint8_t flags;  /* TCP only */
};

/* Per output, while planning. */
struct group {
	struct l4_view head;
	uint16_t last;         /* newest member */
	uint32_t next_seq;
	size_t total_len;
	bool open;
};

/* The IP header of any packet; false when it is neither a whole TCP nor UDP packet. */
static bool view_ip(const struct gro_packet *pk, struct l4_view *v)
{
	const uint8_t *p = pk->data;
	memset(v, 0, sizeof(*v));
	if (pk->len < 1)
		return false;
	if (p[0] >> 4 == 4) {
		if (pk->len < 20)
			return false;
		v->family = AF_INET;
		v->ip_len = (size_t)(p[0] & 0x0f) * 4;
		v->proto = p[IPV4_OFF_PROTO];
		/* A fragment is not a whole segment or datagram. */
		if ((get16(p + IPV4_OFF_FRAG) & ~IPV4_DF) != 0)
			return false;
	} else if (p[0] >> 4 == 6) {
		/* Extension headers: not worth following, the packet passes as it is. */
		if (pk->len < IPV6_HDR)
			return false;
		v->family = AF_INET6;
		v->ip_len = IPV6_HDR;
		v->proto = p[IPV6_OFF_NEXT];
	} else {
		return false;
	}
	return v->ip_len >= 20 && v->ip_len <= pk->len &&
	       (v->proto == IPPROTO_TCP_NUM || v->proto == IPPROTO_UDP_NUM);
}

/* An IPv4 header that does not check out passes alone: the stack drops it, as it would
 * have without us (a joined packet's header is gone, its fault with it). */
static bool ipv4_header_ok(const uint8_t *p, const struct l4_view *v)
{
	return v->family != AF_INET || csum_fold(csum_add(0, p, v->ip_len)) == 0xffff;
}

static void view_tcp(const struct gro_packet *pk, struct l4_view *v)
{
	const uint8_t *t = pk->data + v->ip_len;
	if (pk->len < v->ip_len + TCP_HEADER_MIN_LEN)
		return;
	v->l4_len = (size_t)(t[TCP_OFF_DOFF] >> 4) * 4;
	if (v->l4_len < TCP_HEADER_MIN_LEN || pk->len - v->ip_len < v->l4_len)
		return;
	v->payload_len = pk->len - v->ip_len - v->l4_len;
	v->seq = get32(t + TCP_OFF_SEQ);
	v->flags = t[TCP_OFF_FLAGS];
	/* Data with ACK, PSH at most: SYN, FIN, RST, URG and ECN signals pass one by one. */
	v->eligible = v->payload_len > 0 && (v->flags & ~TCP_FLAG_PSH) == TCP_FLAG_ACK && ipv4_header_ok(pk->data, v);
}

/* A datagram joins only if its UDP length is exactly what the IP header says (the kernel
 * rewrites it per segment) and it has a checksum: an IPv4 datagram sent without one (0)
 * would get one when the kernel splits the group, a change the sender did not ask for. */
static void view_udp(const struct gro_packet *pk, struct l4_view *v)
{
	const uint8_t *u = pk->data + v->ip_len;
	if (pk->len < v->ip_len + UDP_HEADER_LEN)
		return;
	v->l4_len = UDP_HEADER_LEN;
	v->payload_len = pk->len - v->ip_len - UDP_HEADER_LEN;
	v->eligible = v->payload_len > 0 && get16(u + UDP_OFF_LEN) == pk->len - v->ip_len &&
		      get16(u + UDP_CSUM_OFFSET) != 0 && ipv4_header_ok(pk->data, v);
}

/* Fills v for a packet that may be grouped; v->proto is 0 for one that passes alone (UDP
 * too unless coalesce_udp). */
static void view_l4(const struct gro_packet *pk, bool coalesce_udp, struct l4_view *v)
{
	if (!view_ip(pk, v) || (v->proto == IPPROTO_UDP_NUM && !coalesce_udp)) {
		v->proto = 0;
		return;
	}
	if (v->proto == IPPROTO_TCP_NUM)
		view_tcp(pk, v);
	else
		view_udp(pk, v);
	if (!v->l4_len)
		v->proto = 0; /* truncated: passes alone, the stack drops it */
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static const uint8_t *addrs(const uint8_t *p, int family)
{
	return p + (family == AF_INET ? IPV4_OFF_SRC : IPV6_OFF_SRC);
}

static bool same_flow(const uint8_t *a, const struct l4_view *va, const uint8_t *b, const struct l4_view *vb)
{
	if (va->family != vb->family || va->proto != vb->proto)
		return false;
	return memcmp(addrs(a, va->family), addrs(b, vb->family), 2 * addr_len(va->family)) == 0 &&
	       memcmp(a + va->ip_len, b + vb->ip_len, 4) == 0; /* both ports */
}

/* Everything but lengths, IDs, checksums and the sequence number must match the head:
 * for IPv4 TOS, flags, TTL, header length and options; for IPv6 the first word (traffic
 * class, flow label) and hop limit; for TCP the ACK number, header length, flags but PSH,
 * window and every option byte (UDP has nothing more: ports are the flow). */
static bool headers_match(const uint8_t *h, const struct l4_view *vh, const uint8_t *p, const struct l4_view *vp)
{
	if (vh->ip_len != vp->ip_len || vh->l4_len != vp->l4_len)
		return false;
	if (vh->family == AF_INET) {
		if (h[0] != p[0] || h[IPV4_OFF_TOS] != p[IPV4_OFF_TOS] || h[IPV4_OFF_TTL] != p[IPV4_OFF_TTL] ||
		    get16(h + IPV4_OFF_FRAG) != get16(p + IPV4_OFF_FRAG) ||
		    memcmp(h + 20, p + 20, vh->ip_len - 20) != 0)
			return false;
	} else if (memcmp(h, p, 4) != 0 || h[IPV6_OFF_HOPS] != p[IPV6_OFF_HOPS]) {
		return false;
	}
	if (vh->proto == IPPROTO_UDP_NUM)
		return true;
	const uint8_t *th = h + vh->ip_len, *tp = p + vp->ip_len;
	return memcmp(th + TCP_OFF_ACK, tp + TCP_OFF_ACK, 4) == 0 && th[TCP_OFF_DOFF] == tp[TCP_OFF_DOFF] &&
	       (th[TCP_OFF_FLAGS] & ~TCP_FLAG_PSH) == (tp[TCP_OFF_FLAGS] & ~TCP_FLAG_PSH) &&
	       memcmp(th + TCP_OFF_WINDOW, tp + TCP_OFF_WINDOW, 2) == 0 &&
	       memcmp(th + TCP_HEADER_MIN_LEN, tp + TCP_HEADER_MIN_LEN, vh->l4_len - TCP_HEADER_MIN_LEN) == 0;
}

static bool can_join(struct gro_packet *pkts, struct group *g, const struct gro_output *o, const struct gro_packet *pk,
		     const struct l4_view *v)
{
	const uint8_t *h = pkts[o->head].data;
	if (!g->open || !v->eligible || v->payload_len > g->head.payload_len)
		return false;
	if (v->proto == IPPROTO_TCP_NUM ? v->seq != g->next_seq : o->n_members >= GRO_UDP_MAX_SEGMENTS)
		return false;
	if (g->total_len + v->payload_len > GSO_MAX_PACKET + (g->head.family == AF_INET6 ? IPV6_HDR : 0))
		return false;
	/* No TCP or UDP checksum is verified: see gro.h. */
	return headers_match(h, &g->head, pk->data, v);
}

/* Rewrites the head of a group of more than one packet into a super-packet's headers:
 * IP length, the transport checksum field as the pseudo-header sum for NEEDS_CSUM (over the
 * whole super-packet's transport length: the kernel adjusts it per segment), UDP's length. */
static void finish_group(struct gro_packet *pkts, struct gro_output *o, const struct group *g, uint8_t last_flags)
{
	uint8_t *h = pkts[o->head].data;
	uint8_t *t = h + g->head.ip_len;
	bool udp = g->head.proto == IPPROTO_UDP_NUM;
	uint32_t l4_len = (uint32_t)(g->total_len - g->head.ip_len);
	if (g->head.family == AF_INET) {
		put16(h + IPV4_OFF_TOTAL_LEN, (uint16_t)g->total_len);
		csum_ipv4_header(h, g->head.ip_len);
	} else {
		put16(h + IPV6_OFF_PAYLOAD_LEN, (uint16_t)(g->total_len - IPV6_HDR));
	}
	if (udp)
		put16(t + UDP_OFF_LEN, (uint16_t)l4_len);
	else
		t[TCP_OFF_FLAGS] |= last_flags & TCP_FLAG_PSH;
	size_t csum_offset = udp ? UDP_CSUM_OFFSET : TCP_CSUM_OFFSET;
	put16(t + csum_offset,
	      csum_fold(csum_pseudo(addrs(h, g->head.family), addr_len(g->head.family), g->head.proto, l4_len)));
	o->hdr = (struct vnet_hdr){
		.flags = VNET_F_NEEDS_CSUM,
		.gso_type = udp ? VNET_GSO_UDP_L4 : g->head.family == AF_INET ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6,
		.hdr_len = (uint16_t)(g->head.ip_len + g->head.l4_len),
		.gso_size = (uint16_t)g->head.payload_len,
		.csum_start = (uint16_t)g->head.ip_len,
		.csum_offset = (uint16_t)csum_offset,
	};
	o->hdr_skip = g->head.ip_len + g->head.l4_len;
	o->total_len = g->total_len;
}

bool gro_plan_make(struct gro_packet *pkts, size_t n, bool coalesce_udp, struct gro_plan *plan)
{
	struct group groups[GRO_MAX_PACKETS];
	if (n > GRO_MAX_PACKETS)
		return false;
	plan->n_out = 0;
	for (size_t i = 0; i < n; i++) {
		struct l4_view v;
		view_l4(&pkts[i], coalesce_udp, &v);
		plan->next[i] = GRO_NO_NEXT;

		struct group *g = NULL;
		for (size_t k = plan->n_out; v.proto && k-- > 0;) {
			if (same_flow(pkts[plan->out[k].head].data, &groups[k].head, pkts[i].data, &v)) {
				g = &groups[k];
				break;
			}
		}
		if (g && can_join(pkts, g, &plan->out[g - groups], &pkts[i], &v)) {
			struct gro_output *o = &plan->out[g - groups];
			plan->next[g->last] = (uint16_t)i;
			g->last = (uint16_t)i;
			o->n_members++;
			g->total_len += v.payload_len;
			g->next_seq += (uint32_t)v.payload_len;
			/* A short segment or datagram, or a push, ends the group: nothing may follow. */
			if (v.payload_len < g->head.payload_len || (v.flags & TCP_FLAG_PSH))
				g->open = false;
			continue;
		}
		struct gro_output *o = &plan->out[plan->n_out];
		memset(o, 0, sizeof(*o));
		o->head = (uint16_t)i;
		o->n_members = 1;
		o->total_len = pkts[i].len;
		groups[plan->n_out] = (struct group){
			.head = v,
			.last = (uint16_t)i,
			.next_seq = v.seq + (uint32_t)v.payload_len,
			.total_len = pkts[i].len,
			.open = v.eligible && !(v.flags & TCP_FLAG_PSH),
		};
		plan->n_out++;
	}
	for (size_t k = 0; k < plan->n_out; k++) {
		struct gro_output *o = &plan->out[k];
		if (o->n_members > 1) {
			const uint8_t *lt = pkts[groups[k].last].data + groups[k].head.ip_len;
			bool tcp = groups[k].head.proto == IPPROTO_TCP_NUM;
			finish_group(pkts, o, &groups[k], tcp ? lt[TCP_OFF_FLAGS] : 0);
		}
	}
	return true;
}
