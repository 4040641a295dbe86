/* This node's candidate endpoints, as the coordinator client reports them: interface
 * addresses, and the reflexive address STUN reports through the data socket (re-learned every
 * COORD_STUN_INTERVAL_MS and when local addresses change), plus the mapping check against
 * the coordinator's second STUN port that tells an easy NAT from a hard one (punch.h). */
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/coordclient_internal.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"

void coordclient_endpoint_from_sockaddr(const struct sockaddr *sa, struct control_endpoint *e)
{
	memset(e, 0, sizeof(*e));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		e->family = 4;
		memcpy(e->addr, &in->sin_addr, 4);
		e->port = ntohs(in->sin_port);
		return;
	}
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
		e->family = 4;
		memcpy(e->addr, &in6->sin6_addr.s6_addr[12], 4);
	} else {
		e->family = 6;
		memcpy(e->addr, &in6->sin6_addr, 16);
	}
	e->port = ntohs(in6->sin6_port);
}

static bool endpoint_to_socket(const struct device *dev, const struct control_endpoint *e,
			       struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (e->family == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(e->port);
		memcpy(&in->sin_addr, e->addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(e->port);
		memcpy(&in6->sin6_addr, e->addr, 16);
	}
	return device_socket_address(dev, (struct sockaddr *)&ss, out);
}

static bool endpoints_equal(const struct control_endpoint *a, size_t na, const struct control_endpoint *b, size_t nb)
{
	return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}


/* ---------------------------------------------------------------- candidate endpoints */

size_t coordclient_gather_endpoints(struct device *dev, struct coordclient *cc, struct control_endpoint *out)
{
	struct ifaddrs *ifs;
	size_t n = 0;

	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *ifa = ifs; ifa && n < CONTROL_MAX_ENDPOINTS; ifa = ifa->ifa_next) {
			if (!ifa->ifa_addr || !(ifa->ifa_flags & IFF_UP) || (ifa->ifa_flags & IFF_LOOPBACK) ||
			    !strcmp(ifa->ifa_name, dev->ifname))
				continue; /* the overlay itself is never a way to reach us */
			int family = ifa->ifa_addr->sa_family;
			if (family == AF_INET6 && IN6_IS_ADDR_LINKLOCAL(&((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr))
				continue; /* needs a scope, meaningless to others */
			if (family == AF_INET6 && dev->udp_family != AF_INET6)
				continue;
			if (family != AF_INET && family != AF_INET6)
				continue;
			coordclient_endpoint_from_sockaddr(ifa->ifa_addr, &out[n]);
			out[n].port = dev->listen_port;
			n++;
		}
		freeifaddrs(ifs);
	}
	if (cc->have_reflexive && n < CONTROL_MAX_ENDPOINTS) {
		bool known = false;
		for (size_t i = 0; i < n && !known; i++)
			known = memcmp(&out[i], &cc->reflexive, sizeof(cc->reflexive)) == 0;
		if (!known)
			out[n++] = cc->reflexive;
	}
	return n;
}

size_t coordclient_endpoints_to_socket(const struct device *dev, const struct control_endpoint *eps, size_t n,
				       struct sockaddr_storage *out)
{
	size_t used = 0;
	for (size_t i = 0; i < n; i++)
		if (endpoint_to_socket(dev, &eps[i], &out[used]))
			used++;
	return used;
}

size_t coordclient_our_endpoints(const struct device *dev, struct control_endpoint *out, size_t max)
{
	const struct coordclient *cc = dev->coord;
	size_t n = cc ? cc->n_reported : 0;
	if (n > max)
		n = max;
	if (n)
		memcpy(out, cc->reported, n * sizeof(*out));
	return n;
}


int coordclient_mapping_varies(const struct device *dev)
{
	return dev->coord ? dev->coord->mapping_varies : -1;
}

const struct control_endpoint *coordclient_reflexive(const struct device *dev)
{
	return dev->coord && dev->coord->have_reflexive ? &dev->coord->reflexive : NULL;
}


void coordclient_report_endpoints(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	struct control_endpoint now_eps[CONTROL_MAX_ENDPOINTS];
	size_t n = coordclient_gather_endpoints(dev, cc, now_eps);
	cc->endpoint_check_ms = now_ms + COORD_ENDPOINT_CHECK_MS;
	if (cc->phase != COORD_READY || endpoints_equal(now_eps, n, cc->reported, cc->n_reported))
		return;
	/* Our addresses moved: the NAT mapping likely did too; ask STUN again now. */
	if (cc->have_stun_server && !cc->stun_pending)
		cc->stun_next_ms = now_ms;
	memcpy(cc->reported, now_eps, sizeof(now_eps));
	cc->n_reported = n;
	struct control_message m = { .type = CONTROL_MSG_ENDPOINTS };
	memcpy(m.u.endpoints.list, now_eps, sizeof(now_eps));
	m.u.endpoints.n = n;
	log_debug("reporting %zu candidate endpoints to the coordinator", n);
	coordclient_send_message(dev, cc, &m, now_ms);
	/* Peers we are punching toward were told our old candidates: tell them again now. */
	for (size_t i = 0; i < dev->n_peers; i++)
		if (dev->peers[i]->from_coordinator && dev->peers[i]->path.want_since_ms != 0) {
			path_probe_now(&dev->peers[i]->path, now_ms);
			device_peer_touch(dev, dev->peers[i]);
		}
}


/* ---------------------------------------------------------------- STUN */

void coordclient_send_stun(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	uint8_t req[STUN_HEADER_LEN];
	randombytes_buf(cc->stun_txid, sizeof(cc->stun_txid));
	size_t len = stun_build_request(cc->stun_txid, req, sizeof(req));
	socklen_t alen = cc->stun_server.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	if (len && sendto(dev->udp_fd, req, len, MSG_DONTWAIT, (struct sockaddr *)&cc->stun_server, alen) >= 0)
		cc->stun_pending = true;
	cc->stun_next_ms = now_ms + COORD_STUN_RETRY_MS;
	cc->round_main_answered = cc->round_alt_answered = false;
	if (dev->relay.have_alt_stun) {
		const struct sockaddr_storage *alt = &dev->relay.alt_stun_addr;
		randombytes_buf(cc->alt_txid, sizeof(cc->alt_txid));
		len = stun_build_request(cc->alt_txid, req, sizeof(req));
		alen = alt->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
		cc->alt_pending = len && sendto(dev->udp_fd, req, len, MSG_DONTWAIT, (const struct sockaddr *)alt, alen) >= 0;
	}
}

/* Both answers of one round are in: does the mapping depend on the destination? */
static void judge_mapping(struct coordclient *cc)
{
	if (!cc->round_main_answered || !cc->round_alt_answered)
		return;
	int varies = memcmp(&cc->round_main, &cc->round_alt, sizeof(cc->round_main)) != 0;
	if (varies != cc->mapping_varies)
		log_info(varies ? "our NAT maps each destination to a new port (a hard NAT): direct paths need the "
				  "peer's NAT to be easy, and are found by a birthday punch"
				: "our public address and port are the same toward every destination (no NAT, or an "
				  "easy one)");
	cc->mapping_varies = varies;
}

bool coordclient_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
			     uint64_t now_ms)
{
	struct coordclient *cc = dev->coord;
	struct sockaddr_storage mapped;
	if (cc->alt_pending && stun_is_message(buf, len) && dev->relay.have_alt_stun &&
	    sockaddr_equal(from, &dev->relay.alt_stun_addr)) {
		if (stun_parse_response(buf, len, cc->alt_txid, &mapped)) {
			cc->alt_pending = false;
			coordclient_endpoint_from_sockaddr((struct sockaddr *)&mapped, &cc->round_alt);
			cc->round_alt_answered = true;
			judge_mapping(cc);
		}
		return true;
	}
	if (!cc->stun_pending || !stun_is_message(buf, len))
		return false;
	if (!sockaddr_equal(from, &cc->stun_server))
		return true; /* STUN, but not from the server we asked: drop */
	if (!stun_parse_response(buf, len, cc->stun_txid, &mapped))
		return true; /* STUN, but not an answer to us: drop */
	cc->stun_pending = false;
	cc->stun_next_ms = now_ms + COORD_STUN_INTERVAL_MS;
	struct control_endpoint e;
	coordclient_endpoint_from_sockaddr((struct sockaddr *)&mapped, &e);
	cc->round_main = e;
	cc->round_main_answered = true;
	judge_mapping(cc);
	if (!cc->have_reflexive || memcmp(&e, &cc->reflexive, sizeof(e)) != 0) {
		char addr[64];
		log_info("our address as the coordinator sees it: %s",
			 sockaddr_format((struct sockaddr *)&mapped, addr, sizeof(addr)));
		cc->reflexive = e;
		cc->have_reflexive = true;
		coordclient_report_endpoints(dev, cc, now_ms);
	}
	return true;
}

