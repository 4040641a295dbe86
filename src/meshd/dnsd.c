/* The mesh's DNS service (dnsd.h): queries taken from the TUN, answered from the peer map or
 * forwarded (dnsfwd.c), answers written back into the TUN. */
#include "meshd/dnsd.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/gso.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/resolved.h"
#include "meshd/satellites.h"
#include "meshd/tx.h"
#include "meshd/tun.h"

enum {
	UDP_CSUM_OFF = 6,
	ICMP_HEADER_LEN = 8,       /* type, code, checksum, 4 bytes unused or id and sequence */
	ICMP_CSUM_OFF = 2,
	ICMP_QUOTE_MAX = 548,      /* RFC 1812 4.3.2.3: an error fits 576 bytes; enough for v6 too */
	ICMP_ECHO_REPLY = 0,
	ICMP_DEST_UNREACH = 3,
	ICMP_PORT_UNREACH = 3,
	ICMP_ECHO_REQUEST = 8,
	ICMPV6_DEST_UNREACH = 1,
	ICMPV6_PORT_UNREACH = 4,
	ICMPV6_ECHO_REQUEST = 128,
	ICMPV6_ECHO_REPLY = 129,
	IPV4_FRAG_MASK = 0x3fff,   /* fragment offset and MF: a fragment is not a whole query */
	IPV4_FLAG_DF = 0x4000,
	REPLY_TTL = 64,            /* hop limit of our answers (they never leave the host) */
	IPV6_HEADER_BYTES = 40,
};

static void answer_other(struct device *dev, const uint8_t *pkt, const struct ip_packet_info *info, size_t l4,
			 uint8_t proto);

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

bool dnsd_open(struct device *dev, const struct config *cfg, const char *resolv_path, char *err, size_t err_len)
{
	if (!cfg->dns || !dev->coord)
		return true; /* names come from a coordinator's map: without one there is nothing to answer */
	struct dnsd *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, err_len, "out of memory setting up the mesh DNS service");
		return false;
	}
	for (size_t i = 0; i < DNSD_PENDING_MAX; i++)
		d->pending[i].fd = -1;
	d->resolv_path = resolv_path ? resolv_path : DNSD_RESOLV_CONF;
	dev->dns = d;
	if (cfg->dns_resolved)
		d->resolved = resolved_link_open(dev);
	log_info("mesh DNS on %d.%d.%d.%d port %d%s", (int)(DNS_MESH_SERVICE_IPV4 >> 24),
		 (int)(DNS_MESH_SERVICE_IPV4 >> 16 & 0xff), (int)(DNS_MESH_SERVICE_IPV4 >> 8 & 0xff),
		 (int)(DNS_MESH_SERVICE_IPV4 & 0xff), DNS_PORT,
		 d->resolved ? ", set as the interface's resolver in systemd-resolved" : "");
	return true;
}

void dnsd_close(struct device *dev)
{
	struct dnsd *d = dev->dns;
	if (!d)
		return;
	resolved_link_close(d->resolved);
	dnsfwd_close_all(d);
	free(d);
	dev->dns = NULL;
}

void dnsd_node_changed(struct device *dev)
{
	uint8_t s6[16];
	if (dev->dns && dev->dns->resolved)
		resolved_link_update(dev->dns->resolved, dnsd_service_ipv6(dev, s6) ? s6 : NULL,
				     coordclient_dns_domain(dev));
}

bool dnsd_service_ipv6(const struct device *dev, uint8_t out[16])
{
	struct ip_prefix v4, v6;
	if (!coordclient_self_addresses(dev, &v4, &v6))
		return false;
	struct ip_prefix net = ip_prefix_network(&v6);
	memcpy(out, net.addr, 16);
	put16(out + 12, (uint16_t)(DNS_MESH_SERVICE_IPV4 >> 16));
	put16(out + 14, (uint16_t)DNS_MESH_SERVICE_IPV4);
	return true;
}

/* Every packet from the TUN passes here: the last four bytes (100.100.100.100, or the IPv6
 * service address's tail) rule out nearly all of them with one compare. */
static bool is_service(const struct device *dev, const struct ip_packet_info *info)
{
	static const uint8_t tail[4] = { DNS_MESH_SERVICE_IPV4 >> 24, DNS_MESH_SERVICE_IPV4 >> 16 & 0xff,
					 DNS_MESH_SERVICE_IPV4 >> 8 & 0xff, DNS_MESH_SERVICE_IPV4 & 0xff };
	if (info->family == AF_INET)
		return memcmp(info->dst, tail, 4) == 0;
	uint8_t a6[16];
	return memcmp(info->dst + 12, tail, 4) == 0 && dnsd_service_ipv6(dev, a6) && memcmp(info->dst, a6, 16) == 0;
}

bool dnsd_intercept(struct device *dev, uint8_t *pkt, const struct ip_packet_info *info, uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	if (!is_service(dev, info))
		return false;
	/* For the service address from here on: ours, whatever it is. */
	size_t l4;
	uint8_t proto;
	if (info->family == AF_INET) {
		l4 = (size_t)(pkt[0] & 0x0f) * 4;
		proto = pkt[9];
		if (get16(pkt + 6) & IPV4_FRAG_MASK)
			proto = 0;
	} else {
		l4 = IPV6_HEADER_BYTES;
		proto = pkt[6]; /* extension headers: not from a stub resolver; dropped below */
	}
	if (proto != IP_PROTO_UDP || info->total_len < l4 + UDP_HEADER_LEN || get16(pkt + l4 + 2) != DNS_PORT) {
		d->counters.not_dns++;
		answer_other(dev, pkt, info, l4, proto);
		return true;
	}
	d->counters.queries++;
	size_t ulen = get16(pkt + l4 + 4);
	if (ulen < UDP_HEADER_LEN || l4 + ulen > info->total_len) {
		d->counters.refused_malformed++;
		return true;
	}
	struct dnsd_client cl = { .family = info->family, .port = get16(pkt + l4) };
	size_t alen = info->family == AF_INET ? 4 : 16;
	memcpy(cl.client, info->src, alen);
	memcpy(cl.service, info->dst, alen);
	dnsd_handle_query(dev, &cl, pkt + l4 + UDP_HEADER_LEN, ulen - UDP_HEADER_LEN, now_ms);
	return true;
}

/* The addresses a peer owns as a coordinator record gave them: its /32 and /128. */
static size_t peer_records(const struct peer *p, uint16_t qtype, struct dns_record *out)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n_allowed_ips && n < 2; i++) {
		const struct ip_prefix *a = &p->allowed_ips[i];
		bool v4 = a->family == AF_INET && a->bits == 32, v6 = a->family == AF_INET6 && a->bits == 128;
		if ((v4 && (qtype == DNS_TYPE_A || qtype == DNS_TYPE_ANY)) ||
		    (v6 && (qtype == DNS_TYPE_AAAA || qtype == DNS_TYPE_ANY))) {
			out[n].type = v4 ? DNS_TYPE_A : DNS_TYPE_AAAA;
			out[n].len = v4 ? 4 : 16;
			memcpy(out[n].data, a->addr, out[n].len);
			n++;
		}
	}
	return n;
}

/* A satellite behind a gateway peer: the addresses its PEER_SATELLITES gave. */
static size_t satellite_records(const struct control_peer_satellite *sat, uint16_t qtype, struct dns_record *out)
{
	size_t n = 0;
	if (qtype == DNS_TYPE_A || qtype == DNS_TYPE_ANY) {
		out[n] = (struct dns_record){ .type = DNS_TYPE_A, .len = 4 };
		memcpy(out[n++].data, sat->ipv4, 4);
	}
	if (qtype == DNS_TYPE_AAAA || qtype == DNS_TYPE_ANY) {
		out[n] = (struct dns_record){ .type = DNS_TYPE_AAAA, .len = 16 };
		memcpy(out[n++].data, sat->ipv6, 16);
	}
	return n;
}

static size_t self_records(const struct device *dev, uint16_t qtype, struct dns_record *out)
{
	struct ip_prefix v4, v6;
	size_t n = 0;
	if (!coordclient_self_addresses(dev, &v4, &v6))
		return 0;
	if (qtype == DNS_TYPE_A || qtype == DNS_TYPE_ANY) {
		out[n] = (struct dns_record){ .type = DNS_TYPE_A, .len = 4 };
		memcpy(out[n++].data, v4.addr, 4);
	}
	if (qtype == DNS_TYPE_AAAA || qtype == DNS_TYPE_ANY) {
		out[n] = (struct dns_record){ .type = DNS_TYPE_AAAA, .len = 16 };
		memcpy(out[n++].data, v6.addr, 16);
	}
	return n;
}

/* Looks label[0..len) up among this node, the coordinator's peers and our satellites: false
 * if nobody has the name; else *n records of qtype in out (0: the name exists, no data of
 * that type). A scan over the peers, not a per-packet cost: a query is rare next to data,
 * and 10,000 string compares take microseconds. */
static bool lookup(const struct device *dev, const char *label, size_t len, uint16_t qtype, struct dns_record *out,
		   size_t *n)
{
	const char *self = coordclient_node_name(dev);
	if (self && strlen(self) == len && strncasecmp(self, label, len) == 0) {
		*n = self_records(dev, qtype, out);
		return true;
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct peer *p = dev->peers[i];
		/* satellites we serve too: they and we know their names (satellites.h) */
		if ((p->from_coordinator || p->satellite) && p->name && strlen(p->name) == len &&
		    strncasecmp(p->name, label, len) == 0) {
			*n = peer_records(p, qtype, out);
			return true;
		}
		for (size_t j = 0; p->behind && j < p->behind->n; j++) {
			const struct control_peer_satellite *sat = &p->behind->list[j];
			if (strlen(sat->name) == len && strncasecmp(sat->name, label, len) == 0) {
				*n = satellite_records(sat, qtype, out);
				return true;
			}
		}
	}
	return false;
}

void dnsd_handle_query(struct device *dev, const struct dnsd_client *cl, uint8_t *msg, size_t len,
		       uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	struct dns_query q;
	uint8_t out[DNS_EDNS_UDP_SIZE];
	size_t out_len;

	enum dns_parse_result r = dns_query_parse(msg, len, &q);
	switch (r) {
	case DNS_PARSE_OK:
		break;
	case DNS_PARSE_DROP:
		d->counters.refused_malformed++;
		return;
	case DNS_PARSE_NOTIMP:
		d->counters.refused_malformed++;
		out_len = dns_error_build(msg, len, DNS_RCODE_NOTIMP, out, sizeof(out));
		dnsd_reply(dev, cl, out, out_len);
		return;
	case DNS_PARSE_FORMERR:
		d->counters.refused_malformed++;
		out_len = dns_error_build(msg, len, DNS_RCODE_FORMERR, out, sizeof(out));
		dnsd_reply(dev, cl, out, out_len);
		return;
	}

	const char *domain = coordclient_dns_domain(dev);
	size_t prefix;
	if (!domain || !dns_name_in_domain(q.q.text, domain, &prefix)) {
		dnsfwd_query(dev, cl, msg, len, &q.q, q.h.flags, now_ms);
		return;
	}
	/* Ours: answered here and never forwarded, so a resolver that routes the domain to us
	 * (systemd-resolved's ~domain) cannot make a loop through us. */
	struct dns_record recs[2];
	size_t n = 0;
	enum dns_rcode rcode = DNS_RCODE_NOERROR;
	if (q.q.qclass != DNS_CLASS_IN && q.q.qclass != DNS_CLASS_ANY) {
		rcode = DNS_RCODE_REFUSED; /* CHAOS and friends: not in our zone */
	} else if (prefix > 0 && !lookup(dev, q.q.text, prefix, q.q.qtype, recs, &n)) {
		rcode = DNS_RCODE_NXDOMAIN;
		d->counters.nxdomain++;
	}
	/* the domain itself (prefix 0) exists and holds no A or AAAA: NOERROR, no data */
	d->counters.answered_local++;
	out_len = dns_answer_build(&q, rcode, recs, n, out, sizeof(out));
	if (out_len)
		dnsd_reply(dev, cl, out, out_len);
}

/* An answer goes into the TUN, or to the satellite that asked (satellites.h): a satellite's
 * queries come from the data path, not from this host. */
static void write_tun(struct device *dev, uint8_t *pkt, size_t len)
{
	struct ip_packet_info info;
	struct peer *sat;
	if (dev->n_satellites && ip_packet_parse(pkt, len, &info) &&
	    (sat = satellites_owner(dev, info.family, info.dst)) != NULL) {
		tx_send_packet(dev, sat, pkt, info.total_len, clock_monotonic_ms());
		return;
	}
	uint8_t vnet[VNET_HDR_LEN] = { 0 }; /* no offload: one whole packet, checksums done */
	struct iovec iov[2];
	int n = 0;
	if (dev->tun_features & TUN_FEATURE_VNET_HDR)
		iov[n++] = (struct iovec){ .iov_base = vnet, .iov_len = sizeof(vnet) };
	iov[n++] = (struct iovec){ .iov_base = pkt, .iov_len = len };
	if (dev->tun_fd >= 0 && writev(dev->tun_fd, iov, n) < 0)
		device_log_limited(dev, DEVICE_LOG_tun_write, clock_monotonic_ms(), "writing a DNS answer to %s failed: %s",
				   dev->ifname, strerror(errno));
}

/* Writes an IP packet from cl->service to cl->client carrying l4[0..len) of protocol proto
 * into the TUN. The IP header goes in front of l4, which must have IPV6_HEADER_BYTES of
 * room before it; the transport checksum at csum_off is computed here (over a
 * pseudo-header, except for ICMPv4, which has none). */
static void emit(struct device *dev, const struct dnsd_client *cl, uint8_t proto, uint8_t *l4, size_t len,
		 size_t csum_off)
{
	size_t ip = cl->family == AF_INET ? DNSD_IPV4_HEADER_LEN : IPV6_HEADER_BYTES;
	uint8_t *pkt = l4 - ip;
	memset(pkt, 0, ip);
	if (cl->family == AF_INET) {
		pkt[0] = 0x45;
		put16(pkt + 2, (uint16_t)(ip + len));
		put16(pkt + 6, IPV4_FLAG_DF);
		pkt[8] = REPLY_TTL;
		pkt[9] = proto;
		memcpy(pkt + 12, cl->service, 4);
		memcpy(pkt + 16, cl->client, 4);
		csum_ipv4_header(pkt, DNSD_IPV4_HEADER_LEN);
	} else {
		pkt[0] = 0x60;
		put16(pkt + 4, (uint16_t)len);
		pkt[6] = proto;
		pkt[7] = REPLY_TTL;
		memcpy(pkt + 8, cl->service, 16);
		memcpy(pkt + 24, cl->client, 16);
	}
	put16(l4 + csum_off, 0);
	uint64_t sum = csum_add(0, l4, len);
	if (proto != IP_PROTO_ICMP)
		sum += csum_pseudo(cl->family == AF_INET ? pkt + 12 : pkt + 8, cl->family == AF_INET ? 4 : 16, proto,
				   (uint32_t)len);
	uint16_t c = (uint16_t)~csum_fold(sum);
	if (c == 0 && proto == IP_PROTO_UDP)
		c = 0xffff; /* 0 means "no checksum" (IPv4) or is invalid (IPv6) */
	put16(l4 + csum_off, c);
	write_tun(dev, pkt, ip + len);
}

void dnsd_reply(struct device *dev, const struct dnsd_client *cl, const uint8_t *payload, size_t len)
{
	uint8_t pkt[IPV6_HEADER_BYTES + UDP_HEADER_LEN + DNSD_UPSTREAM_MSG_MAX];
	uint8_t *udp = pkt + IPV6_HEADER_BYTES;

	if (len == 0 || len > DNSD_UPSTREAM_MSG_MAX)
		return;
	put16(udp, DNS_PORT);
	put16(udp + 2, cl->port);
	put16(udp + 4, (uint16_t)(UDP_HEADER_LEN + len));
	memcpy(udp + UDP_HEADER_LEN, payload, len);
	emit(dev, cl, IP_PROTO_UDP, udp, UDP_HEADER_LEN + len, UDP_CSUM_OFF);
}

/* Anything else sent to the service address: an echo request is answered (ping
 * 100.100.100.100 says the node is there), TCP and UDP to other ports get "port
 * unreachable" (dig +tcp fails at once instead of waiting), the rest is dropped. Never an
 * ICMP error for an ICMP error. Only the host's own programs reach this (the TUN). */
static void answer_other(struct device *dev, const uint8_t *pkt, const struct ip_packet_info *info, size_t l4,
			 uint8_t proto)
{
	uint8_t buf[IPV6_HEADER_BYTES + ICMP_HEADER_LEN + ICMP_QUOTE_MAX];
	uint8_t *icmp = buf + IPV6_HEADER_BYTES;
	struct dnsd_client cl = { .family = info->family };
	size_t alen = info->family == AF_INET ? 4 : 16, len;
	bool v4 = info->family == AF_INET;
	uint8_t icmp_proto = v4 ? IP_PROTO_ICMP : IP_PROTO_ICMPV6;

	memcpy(cl.client, info->src, alen);
	memcpy(cl.service, info->dst, alen);
	if (proto == icmp_proto && info->total_len >= l4 + ICMP_HEADER_LEN &&
	    pkt[l4] == (v4 ? ICMP_ECHO_REQUEST : ICMPV6_ECHO_REQUEST) && pkt[l4 + 1] == 0) {
		len = info->total_len - l4;
		if (len > ICMP_HEADER_LEN + ICMP_QUOTE_MAX)
			return; /* a larger ping than any diagnosis needs */
		memcpy(icmp, pkt + l4, len);
		icmp[0] = v4 ? ICMP_ECHO_REPLY : ICMPV6_ECHO_REPLY;
		emit(dev, &cl, icmp_proto, icmp, len, ICMP_CSUM_OFF);
		return;
	}
	if (proto != IP_PROTO_UDP && proto != IP_PROTO_TCP)
		return;
	/* RFC 792 / 4443: the type, code, checksum and 4 unused bytes, then as much of the
	 * packet as fits (at least its IP header and 8 bytes) */
	len = info->total_len < ICMP_QUOTE_MAX ? info->total_len : ICMP_QUOTE_MAX;
	memset(icmp, 0, ICMP_HEADER_LEN);
	icmp[0] = v4 ? ICMP_DEST_UNREACH : ICMPV6_DEST_UNREACH;
	icmp[1] = v4 ? ICMP_PORT_UNREACH : ICMPV6_PORT_UNREACH;
	memcpy(icmp + ICMP_HEADER_LEN, pkt, len);
	emit(dev, &cl, icmp_proto, icmp, ICMP_HEADER_LEN + len, ICMP_CSUM_OFF);
}

void dnsd_log_counters(const struct device *dev)
{
	if (!dev->dns)
		return;
	const struct dnsd_counters *c = &dev->dns->counters;
#define DNSD_COUNTER_LOG(name) log_info("  dns_" #name ": %llu", (unsigned long long)c->name);
	DNSD_COUNTERS(DNSD_COUNTER_LOG)
#undef DNSD_COUNTER_LOG
}
