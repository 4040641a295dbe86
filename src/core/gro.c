/* TUN offloads, receive side: see gro.h.
 *
 * Strategy: walk the packets in order. Each TCP packet is looked up by its flow (addresses
 * and ports) among the outputs planned so far, newest first; only the newest output of a
 * flow may grow, so order within a flow never changes. A packet joins it when it continues
 * the byte stream exactly and looks like the head in every other way; otherwise it starts
 * a new output (and becomes the flow's newest). */
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
	IPV4_DF = 0x4000, /* the only fragment bit a coalescable packet may carry */
};

/* What the planner knows of one TCP packet. */
struct tcp_view {
	bool is_tcp;
	bool eligible; /* may head or join a group */
	int family;
	size_t ip_len, tcp_len, payload_len;
	uint32_t seq;
	uint8_t flags;
};

/* Per output, while planning. */
struct group {
	struct tcp_view head;
	uint16_t last;         /* newest member */
	uint32_t next_seq;
	size_t total_len;
	bool open;
};

static void view_tcp(const struct gro_packet *pk, struct tcp_view *v)
{
	const uint8_t *p = pk->data;
	memset(v, 0, sizeof(*v));
	if (pk->len < 1)
		return;
	if (p[0] >> 4 == 4) {
		if (pk->len < 20 || p[IPV4_OFF_PROTO] != IPPROTO_TCP_NUM)
			return;
		v->family = AF_INET;
		v->ip_len = (size_t)(p[0] & 0x0f) * 4;
		/* A fragment is not a whole TCP segment. */
		if ((get16(p + IPV4_OFF_FRAG) & ~IPV4_DF) != 0)
			return;
	} else if (p[0] >> 4 == 6) {
		/* Extension headers: not worth following, the packet passes as it is. */
		if (pk->len < IPV6_HDR || p[IPV6_OFF_NEXT] != IPPROTO_TCP_NUM)
			return;
		v->family = AF_INET6;
		v->ip_len = IPV6_HDR;
	} else {
		return;
	}
	if (v->ip_len < 20 || pk->len < v->ip_len + TCP_HEADER_MIN_LEN)
		return;
	const uint8_t *t = p + v->ip_len;
	v->tcp_len = (size_t)(t[TCP_OFF_DOFF] >> 4) * 4;
	if (v->tcp_len < TCP_HEADER_MIN_LEN || pk->len - v->ip_len < v->tcp_len)
		return;
	v->is_tcp = true;
	v->payload_len = pk->len - v->ip_len - v->tcp_len;
	v->seq = get32(t + TCP_OFF_SEQ);
	v->flags = t[TCP_OFF_FLAGS];
	/* Data with ACK, PSH at most: SYN, FIN, RST, URG and ECN signals pass one by one.
	 * An IPv4 header that does not check out passes too: the stack drops it, as it would
	 * have without us (a joined packet's header is gone, its fault with it). */
	v->eligible = v->payload_len > 0 && (v->flags & ~TCP_FLAG_PSH) == TCP_FLAG_ACK &&
		      (v->family != AF_INET || csum_fold(csum_add(0, p, v->ip_len)) == 0xffff);
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static const uint8_t *addrs(const uint8_t *p, int family)
{
	return p + (family == AF_INET ? IPV4_OFF_SRC : IPV6_OFF_SRC);
}

static bool same_flow(const uint8_t *a, const struct tcp_view *va, const uint8_t *b, const struct tcp_view *vb)
{
	if (va->family != vb->family)
		return false;
	return memcmp(addrs(a, va->family), addrs(b, vb->family), 2 * addr_len(va->family)) == 0 &&
	       memcmp(a + va->ip_len, b + vb->ip_len, 4) == 0; /* both ports */
}

/* Everything but lengths, IDs, checksums and the sequence number must match the head:
 * for IPv4 TOS, flags, TTL, header length and options; for IPv6 the first word (traffic
 * class, flow label) and hop limit; for TCP the ACK number, header length, flags but PSH,
 * window and every option byte. */
static bool headers_match(const uint8_t *h, const struct tcp_view *vh, const uint8_t *p, const struct tcp_view *vp)
{
	if (vh->ip_len != vp->ip_len || vh->tcp_len != vp->tcp_len)
		return false;
	if (vh->family == AF_INET) {
		if (h[0] != p[0] || h[IPV4_OFF_TOS] != p[IPV4_OFF_TOS] || h[IPV4_OFF_TTL] != p[IPV4_OFF_TTL] ||
		    get16(h + IPV4_OFF_FRAG) != get16(p + IPV4_OFF_FRAG) ||
		    memcmp(h + 20, p + 20, vh->ip_len - 20) != 0)
			return false;
	} else if (memcmp(h, p, 4) != 0 || h[IPV6_OFF_HOPS] != p[IPV6_OFF_HOPS]) {
		return false;
	}
	const uint8_t *th = h + vh->ip_len, *tp = p + vp->ip_len;
	return memcmp(th + TCP_OFF_ACK, tp + TCP_OFF_ACK, 4) == 0 && th[TCP_OFF_DOFF] == tp[TCP_OFF_DOFF] &&
	       (th[TCP_OFF_FLAGS] & ~TCP_FLAG_PSH) == (tp[TCP_OFF_FLAGS] & ~TCP_FLAG_PSH) &&
	       memcmp(th + TCP_OFF_WINDOW, tp + TCP_OFF_WINDOW, 2) == 0 &&
	       memcmp(th + TCP_HEADER_MIN_LEN, tp + TCP_HEADER_MIN_LEN, vh->tcp_len - TCP_HEADER_MIN_LEN) == 0;
}

static bool can_join(struct gro_packet *pkts, struct group *g, const struct gro_output *o, const struct gro_packet *pk,
		     const struct tcp_view *v)
{
	const uint8_t *h = pkts[o->head].data;
	if (!g->open || !v->eligible || v->seq != g->next_seq || v->payload_len > g->head.payload_len)
		return false;
	if (g->total_len + v->payload_len > GSO_MAX_PACKET + (g->head.family == AF_INET6 ? IPV6_HDR : 0))
		return false;
	/* No TCP checksum is verified: see gro.h. */
	return headers_match(h, &g->head, pk->data, v);
}

/* Rewrites the head of a group of more than one packet into a super-packet's headers. */
static void finish_group(struct gro_packet *pkts, struct gro_output *o, const struct group *g, uint8_t last_flags)
{
	uint8_t *h = pkts[o->head].data;
	uint8_t *t = h + g->head.ip_len;
	if (g->head.family == AF_INET) {
		put16(h + IPV4_OFF_TOTAL_LEN, (uint16_t)g->total_len);
		csum_ipv4_header(h, g->head.ip_len);
	} else {
		put16(h + IPV6_OFF_PAYLOAD_LEN, (uint16_t)(g->total_len - IPV6_HDR));
	}
	t[TCP_OFF_FLAGS] |= last_flags & TCP_FLAG_PSH;
	uint32_t l4_len = (uint32_t)(g->total_len - g->head.ip_len);
	put16(t + TCP_CSUM_OFFSET,
	      csum_fold(csum_pseudo(addrs(h, g->head.family), addr_len(g->head.family), IPPROTO_TCP_NUM, l4_len)));
	o->hdr = (struct vnet_hdr){
		.flags = VNET_F_NEEDS_CSUM,
		.gso_type = g->head.family == AF_INET ? VNET_GSO_TCPV4 : VNET_GSO_TCPV6,
		.hdr_len = (uint16_t)(g->head.ip_len + g->head.tcp_len),
		.gso_size = (uint16_t)g->head.payload_len,
		.csum_start = (uint16_t)g->head.ip_len,
		.csum_offset = TCP_CSUM_OFFSET,
	};
	o->hdr_skip = g->head.ip_len + g->head.tcp_len;
	o->total_len = g->total_len;
}

bool gro_plan_make(struct gro_packet *pkts, size_t n, struct gro_plan *plan)
{
	struct group groups[GRO_MAX_PACKETS];
	if (n > GRO_MAX_PACKETS)
		return false;
	plan->n_out = 0;
	for (size_t i = 0; i < n; i++) {
		struct tcp_view v;
		view_tcp(&pkts[i], &v);
		plan->next[i] = GRO_NO_NEXT;

		struct group *g = NULL;
		for (size_t k = plan->n_out; v.is_tcp && k-- > 0;) {
			if (groups[k].head.is_tcp &&
			    same_flow(pkts[plan->out[k].head].data, &groups[k].head, pkts[i].data, &v)) {
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
			/* A short segment or a push ends the group: nothing may follow either. */
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
			finish_group(pkts, o, &groups[k], lt[TCP_OFF_FLAGS]);
		}
	}
	return true;
}
