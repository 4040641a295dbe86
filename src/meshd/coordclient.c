/* The coordinator client: connection state machine, peer-map application, endpoint and
 * STUN reporting, state persistence. Driven by device.c's loop (on_io, tick, deadlines). */
#include "meshd/coordclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/control.h"
#include "core/handshake.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/stun.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/relayclient.h"
#include "meshd/state.h"
#include "meshd/tx.h"

enum {
	COORD_BACKOFF_MIN_MS = 1000,        /* first retry soon: the coordinator may just be restarting */
	COORD_BACKOFF_MAX_MS = 30000,       /* never wait longer than this for a returning coordinator */
	COORD_CONNECT_TIMEOUT_MS = 10000,   /* connect + handshake + register; matches the server's limit */
	COORD_KEEPALIVE_MS = 25000,         /* well inside the server's 75 s idle limit and NAT timeouts */
	COORD_DEAD_AFTER_MS = 75000,        /* three keepalives unanswered: reconnect */
	COORD_STATE_SAVE_DELAY_MS = 1000,   /* batch a burst of map changes into one write */
	/* Re-learn the reflexive address (NAT mappings change): under conntrack's 30 s for an
	 * unreplied UDP flow, so the mapping the coordinator saw stays the one peers are told. */
	COORD_STUN_INTERVAL_MS = 25000,
	COORD_STUN_RETRY_MS = 3000,         /* an unanswered STUN request is retried this soon */
	/* Re-read interface addresses (DHCP, roaming: a laptop changing networks). getifaddrs
	 * costs microseconds; a new address is published within this long, and a fresh STUN
	 * answer follows at once. */
	COORD_ENDPOINT_CHECK_MS = 5000,
	/* Control messages are few and small; relayed datagrams (UDP blocked) fill the rest: about
	 * 170 full-size packets, a few milliseconds of a fast link, and the most a stalled
	 * connection holds before relayed packets are dropped rather than queued. */
	COORD_WRITE_QUEUE = 256 * 1024,
	/* Relayed datagrams may fill the queue only up to here, so a control message (a
	 * keepalive, new endpoints) always finds room behind them. */
	COORD_RELAY_QUEUE_LIMIT = COORD_WRITE_QUEUE - 16 * 1024,
	/* Relayed datagrams over TCP come many frames at a time: read them in one call. */
	COORD_READ_BUFFER = 64 * 1024,
	COORD_MIN_OVERLAY_BITS_V4 = 8,      /* no overlay wider than a /8 (ours is a /10) */
	COORD_MIN_OVERLAY_BITS_V6 = 16,     /* nor than a /16 (ours is a ULA /48) */
};

_Static_assert(COORD_READ_BUFFER >= CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME, "a read can complete any frame");

enum coord_phase {
	COORD_IDLE,        /* waiting for next_connect_ms */
	COORD_CONNECTING,  /* TCP connect in progress */
	COORD_HELLO_SENT,  /* waiting for the Noise answer */
	COORD_REGISTERING, /* REGISTER sent, waiting for REGISTERED */
	COORD_READY,
};

struct coordclient {
	char state_dir[CONFIG_PATH_MAX];
	struct node_state state;
	bool have_join;
	struct joinkey join;

	enum coord_phase phase;
	int fd;
	uint32_t watched; /* epoll events currently registered for fd */
	struct control_channel ch;
	uint8_t rbuf[COORD_READ_BUFFER];
	size_t rlen;
	uint8_t wbuf[COORD_WRITE_QUEUE];
	size_t wlen;

	uint64_t next_connect_ms;
	uint64_t backoff_ms;
	uint64_t phase_deadline_ms;
	uint64_t last_rx_ms, last_tx_ms;
	uint32_t map_generation;

	bool state_dirty;
	uint64_t state_dirty_since_ms;

	struct sockaddr_storage coord_addr; /* resolved once (see resolve_coordinator) */
	socklen_t coord_addr_len;           /* 0 until resolved */
	struct sockaddr_storage stun_server; /* in the data socket's family */
	bool have_stun_server;
	uint8_t stun_txid[STUN_TRANSACTION_ID_LEN];
	bool stun_pending;
	uint64_t stun_next_ms;
	bool have_reflexive;
	struct control_endpoint reflexive;
	/* The same question to the coordinator's second STUN port in each round: a different
	 * answer means our NAT maps per destination (a hard NAT, see punch.h). */
	uint8_t alt_txid[STUN_TRANSACTION_ID_LEN];
	bool alt_pending;
	bool round_main_answered, round_alt_answered;
	struct control_endpoint round_main, round_alt;
	int mapping_varies; /* -1 unknown, 0 no, 1 yes */

	struct control_endpoint reported[CONTROL_MAX_ENDPOINTS];
	size_t n_reported;
	uint64_t endpoint_check_ms;
};

/* ---------------------------------------------------------------- helpers */

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

static void mark_state_dirty(struct coordclient *cc, uint64_t now_ms)
{
	if (!cc->state_dirty)
		cc->state_dirty_since_ms = now_ms;
	cc->state_dirty = true;
}

static void save_state(struct device *dev, struct coordclient *cc)
{
	char err[512];
	cc->state.n_peers = 0;
	for (size_t i = 0; i < dev->n_peers; i++)
		if (dev->peers[i]->from_coordinator && !state_add_peer(&cc->state, &dev->peers[i]->coord_record))
			log_warn("out of memory while saving the peer map");
	if (!state_save(&cc->state, cc->state_dir, err, sizeof(err)))
		log_warn("cannot save the coordinator state: %s", err);
	cc->state_dirty = false;
}

/* ---------------------------------------------------------------- peers from the map */

static void apply_peer(struct device *dev, struct coordclient *cc, const struct control_peer *cp, uint64_t now_ms)
{
	if (sodium_memcmp(cp->node_key, dev->identity.public_key, WIRE_KEY_LEN) == 0)
		return; /* ourselves */

	/* A peer may only own addresses inside our overlay: even a coordinator must not route
	 * other traffic (say, the Internet) into the mesh. */
	if (cc->state.registered && (!ip_prefix_contains(&cc->state.ipv4, AF_INET, cp->ipv4) ||
				     !ip_prefix_contains(&cc->state.ipv6, AF_INET6, cp->ipv6))) {
		log_warn("peer %s: its addresses are outside the overlay; ignored", cp->name);
		return;
	}
	struct config_peer conf;
	memset(&conf, 0, sizeof(conf));
	snprintf(conf.name, sizeof(conf.name), "%s", cp->name);
	memcpy(conf.public_key, cp->node_key, WIRE_KEY_LEN);
	conf.allowed_ips[0] = (struct ip_prefix){ .family = AF_INET, .bits = 32 };
	memcpy(conf.allowed_ips[0].addr, cp->ipv4, 4);
	conf.allowed_ips[1] = (struct ip_prefix){ .family = AF_INET6, .bits = 128 };
	memcpy(conf.allowed_ips[1].addr, cp->ipv6, 16);
	conf.n_allowed_ips = 2;

	struct peer *p = peer_by_public_key(dev, cp->node_key);
	if (!p) {
		p = device_peer_add(dev, &conf);
		if (!p) {
			log_error("out of memory adding peer %s", cp->name);
			return;
		}
		p->from_coordinator = true;
		char v4[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, cp->ipv4, v4, sizeof(v4));
		log_info("peer %s: added from coordinator (%s)", cp->name, v4);
	}
	p->map_generation = cc->map_generation;
	if (p->from_coordinator) {
		if (memcmp(&p->coord_record, cp, sizeof(*cp)) == 0)
			return;
		p->coord_record = *cp;
		/* Its addresses may have changed (re-registered while we were away). */
		memcpy(p->name, conf.name, sizeof(p->name));
		memcpy(p->allowed_ips, conf.allowed_ips, sizeof(p->allowed_ips));
		p->n_allowed_ips = conf.n_allowed_ips;
	}
	struct sockaddr_storage addrs[CONTROL_MAX_ENDPOINTS];
	size_t n = coordclient_endpoints_to_socket(dev, cp->endpoints, cp->n_endpoints, addrs);
	path_set_announced(&p->path, addrs, n, now_ms);
	mark_state_dirty(cc, now_ms);
}

static void remove_peer(struct device *dev, struct coordclient *cc, struct peer *p, uint64_t now_ms)
{
	log_info("peer %s: removed by the coordinator", p->name);
	device_peer_remove(dev, p);
	mark_state_dirty(cc, now_ms);
}

/* After a full map: coordinator peers it did not list are gone. */
static void sweep_peers(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	for (size_t i = 0; i < dev->n_peers;) {
		struct peer *p = dev->peers[i];
		if (p->from_coordinator && p->map_generation != cc->map_generation)
			remove_peer(dev, cc, p, now_ms); /* swaps the last peer into slot i */
		else
			i++;
	}
}

/* ---------------------------------------------------------------- candidate endpoints */

static size_t gather_endpoints(struct device *dev, struct coordclient *cc, struct control_endpoint *out)
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

/* ---------------------------------------------------------------- connection I/O */

static void watch(struct device *dev, struct coordclient *cc, uint32_t events)
{
	if (cc->fd >= 0 && events != cc->watched && device_watch_fd(dev, cc->fd, events))
		cc->watched = events;
}

static void disconnect(struct device *dev, struct coordclient *cc, uint64_t now_ms, const char *why)
{
	if (cc->fd >= 0) {
		watch(dev, cc, 0);
		close(cc->fd);
	}
	/* why == NULL: a deliberate close that the caller has already explained. */
	if (why && cc->phase == COORD_READY)
		log_warn("coordinator connection lost (%s); tunnels keep working, reconnecting", why);
	else if (why)
		log_warn("cannot reach the coordinator %s:%u (%s); retrying in %" PRIu64 " s", cc->state.coord_host,
			 cc->state.coord_port, why, cc->backoff_ms / 1000);
	cc->fd = -1;
	cc->watched = 0;
	cc->phase = COORD_IDLE;
	relayclient_reset(dev);
	cc->rlen = cc->wlen = 0;
	control_channel_clear(&cc->ch);
	cc->next_connect_ms = now_ms + cc->backoff_ms + randombytes_uniform(COORD_BACKOFF_MIN_MS);
	cc->backoff_ms = cc->backoff_ms * 2 > COORD_BACKOFF_MAX_MS ? COORD_BACKOFF_MAX_MS : cc->backoff_ms * 2;
}

static void flush_writes(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	while (cc->wlen > 0) {
		ssize_t n = send(cc->fd, cc->wbuf, cc->wlen, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			disconnect(dev, cc, now_ms, strerror(errno));
			return;
		}
		memmove(cc->wbuf, cc->wbuf + n, cc->wlen - (size_t)n);
		cc->wlen -= (size_t)n;
	}
	watch(dev, cc, EPOLLIN | (cc->wlen ? EPOLLOUT : 0));
}

static bool queue_frame(struct coordclient *cc, const uint8_t *frame, size_t len)
{
	if (len > sizeof(cc->wbuf) - cc->wlen)
		return false;
	memcpy(cc->wbuf + cc->wlen, frame, len);
	cc->wlen += len;
	return true;
}

static bool send_message(struct device *dev, struct coordclient *cc, const struct control_message *m, uint64_t now_ms)
{
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t frame_len;
	/* A node says little and seldom: one record per frame. */
	bool ok = control_seal_message(&cc->ch, m, frame, sizeof(frame), &frame_len) && queue_frame(cc, frame, frame_len);
	if (!ok) {
		disconnect(dev, cc, now_ms, "cannot queue a control message");
		return false;
	}
	cc->last_tx_ms = now_ms;
	flush_writes(dev, cc, now_ms);
	return cc->fd >= 0;
}

int coordclient_mapping_varies(const struct device *dev)
{
	return dev->coord ? dev->coord->mapping_varies : -1;
}

const struct control_endpoint *coordclient_reflexive(const struct device *dev)
{
	return dev->coord && dev->coord->have_reflexive ? &dev->coord->reflexive : NULL;
}

bool coordclient_ready(const struct device *dev)
{
	return dev->coord && dev->coord->phase == COORD_READY;
}

const char *coordclient_node_name(const struct device *dev)
{
	return dev->coord && dev->coord->state.registered ? dev->coord->state.name : NULL;
}

bool coordclient_send_relay(struct device *dev, const uint8_t to[WIRE_KEY_LEN], const uint8_t *payload, size_t len,
			    uint64_t now_ms)
{
	struct coordclient *cc = dev->coord;
	if (!coordclient_ready(dev) || cc->wlen > COORD_RELAY_QUEUE_LIMIT)
		return false; /* a datagram: dropped, as a full socket buffer would */
	struct control_message m = { .type = CONTROL_MSG_RELAY };
	memcpy(m.u.relay.node_key, to, WIRE_KEY_LEN);
	m.u.relay.payload = payload;
	m.u.relay.payload_len = len;
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t frame_len;
	if (!control_seal_message(&cc->ch, &m, frame, sizeof(frame), &frame_len) || !queue_frame(cc, frame, frame_len))
		return false;
	cc->last_tx_ms = now_ms;
	/* Sent when the loop next sees the socket writable: the datagrams of one batch go out
	 * in one send() instead of one each. */
	watch(dev, cc, EPOLLIN | EPOLLOUT);
	return true;
}

static void send_register(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	struct control_message m = { .type = CONTROL_MSG_REGISTER };
	if (gethostname(m.u.reg.hostname, sizeof(m.u.reg.hostname)) != 0 || !m.u.reg.hostname[0])
		snprintf(m.u.reg.hostname, sizeof(m.u.reg.hostname), "node");
	m.u.reg.hostname[CONTROL_NAME_MAX] = '\0';
	/* Keep what is valid in a DNS label; the coordinator sanitizes again. */
	for (char *c = m.u.reg.hostname; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-'))
			*c = '-';
	if (cc->have_join) {
		memcpy(m.u.reg.join_secret, cc->join.secret, JOINKEY_SECRET_LEN);
		m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
	}
	cc->n_reported = gather_endpoints(dev, cc, cc->reported);
	memcpy(m.u.reg.endpoints, cc->reported, sizeof(cc->reported));
	m.u.reg.n_endpoints = cc->n_reported;
	cc->endpoint_check_ms = now_ms + COORD_ENDPOINT_CHECK_MS;
	send_message(dev, cc, &m, now_ms);
	sodium_memzero(&m, sizeof(m));
}

static void report_endpoints_if_changed(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	struct control_endpoint now_eps[CONTROL_MAX_ENDPOINTS];
	size_t n = gather_endpoints(dev, cc, now_eps);
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
	send_message(dev, cc, &m, now_ms);
	/* Peers we are punching toward were told our old candidates: tell them again now. */
	for (size_t i = 0; i < dev->n_peers; i++)
		if (dev->peers[i]->from_coordinator && dev->peers[i]->path.want_since_ms != 0)
			path_probe_now(&dev->peers[i]->path, now_ms);
}

static bool apply_registered(struct device *dev, struct coordclient *cc, const struct control_registered *r,
			     uint64_t now_ms)
{
	/* An overlay as wide as /0 would pull all of this host's traffic into the tunnel. */
	if (r->ipv4_bits < COORD_MIN_OVERLAY_BITS_V4 || r->ipv6_bits < COORD_MIN_OVERLAY_BITS_V6) {
		log_error("the coordinator assigned an overlay prefix wider than /%d (IPv4) or /%d (IPv6); refused",
			  COORD_MIN_OVERLAY_BITS_V4, COORD_MIN_OVERLAY_BITS_V6);
		return false;
	}
	struct ip_prefix v4 = { .family = AF_INET, .bits = r->ipv4_bits };
	struct ip_prefix v6 = { .family = AF_INET6, .bits = r->ipv6_bits };
	memcpy(v4.addr, r->ipv4, 4);
	memcpy(v6.addr, r->ipv6, 16);
	bool changed = !cc->state.registered || memcmp(&v4, &cc->state.ipv4, sizeof(v4)) != 0 ||
		       memcmp(&v6, &cc->state.ipv6, sizeof(v6)) != 0;
	char a[IP_PREFIX_STR_MAX], b[IP_PREFIX_STR_MAX], err[256];
	log_info("registered with coordinator %s:%u as %s (%s, %s)", cc->state.coord_host, cc->state.coord_port,
		 r->name, ip_prefix_format(&v4, a, sizeof(a)), ip_prefix_format(&v6, b, sizeof(b)));
	if (changed) {
		if (cc->state.registered)
			log_warn("the coordinator assigned new addresses; the old ones stay until meshd restarts");
		if (!device_add_address(dev, &v4, err, sizeof(err)) || !device_add_address(dev, &v6, err, sizeof(err)))
			log_error("%s", err);
	}
	cc->state.registered = true;
	snprintf(cc->state.name, sizeof(cc->state.name), "%s", r->name);
	cc->state.ipv4 = v4;
	cc->state.ipv6 = v6;
	mark_state_dirty(cc, now_ms);
	/* Registered once: the node key is known now, the join key is not needed again. */
	if (cc->have_join)
		joinkey_clear(&cc->join);
	cc->have_join = false;
	return true;
}

static void refused(struct device *dev, struct coordclient *cc, const struct control_error *e, uint64_t now_ms)
{
	switch (e->code) {
	case CONTROL_ERR_JOIN_KEY_UNKNOWN:
	case CONTROL_ERR_JOIN_KEY_EXPIRED:
	case CONTROL_ERR_JOIN_KEY_REVOKED:
	case CONTROL_ERR_JOIN_KEY_USED:
	case CONTROL_ERR_NEED_JOIN_KEY:
	case CONTROL_ERR_NODE_REMOVED:
		/* Retrying cannot fix these: say why once and stop. */
		log_error("coordinator refused registration: %s", e->text);
		if (e->code == CONTROL_ERR_NODE_REMOVED) {
			/* Out of the network: forget its peers (a map of no one), so that a restart
			 * does not knock on their doors. */
			cc->map_generation++;
			sweep_peers(dev, cc, now_ms);
		}
		dev->exit_code = 1;
		dev->stop_requested = true;
		disconnect(dev, cc, now_ms, NULL);
		return;
	default:
		disconnect(dev, cc, now_ms, e->text);
	}
}

static void handle_message(struct device *dev, struct coordclient *cc, const uint8_t *plain, size_t len,
			   uint64_t now_ms)
{
	struct control_message m;
	enum control_decode_result r = control_decode(plain, len, &m);
	if (r == CONTROL_DECODE_UNKNOWN)
		return; /* a newer coordinator's message: skip */
	if (r != CONTROL_DECODE_OK) {
		disconnect(dev, cc, now_ms, "malformed message from the coordinator");
		return;
	}
	switch (m.type) {
	case CONTROL_MSG_REGISTERED:
		if (cc->phase != COORD_REGISTERING)
			break;
		if (!apply_registered(dev, cc, &m.u.registered, now_ms)) {
			disconnect(dev, cc, now_ms, "unusable registration");
			break;
		}
		cc->phase = COORD_READY;
		cc->backoff_ms = COORD_BACKOFF_MIN_MS;
		cc->map_generation++;
		cc->stun_next_ms = now_ms; /* learn our reflexive address now */
		break;
	case CONTROL_MSG_ERROR:
		refused(dev, cc, &m.u.error, now_ms);
		break;
	case CONTROL_MSG_RELAY_INFO:
		if (cc->phase != COORD_READY)
			break;
		relayclient_on_info(dev, &m.u.relay_info, &cc->coord_addr, now_ms);
		/* STUN lives on the port the coordinator names (a non-default stun_listen). */
		if (dev->relay.have_info && !sockaddr_equal(&cc->stun_server, &dev->relay.addr)) {
			cc->stun_server = dev->relay.addr;
			cc->have_stun_server = true;
			cc->stun_pending = false;
			cc->stun_next_ms = now_ms;
		}
		break;
	case CONTROL_MSG_RELAY:
		if (cc->phase == COORD_READY)
			relayclient_on_tcp(dev, &m.u.relay, now_ms);
		break;
	case CONTROL_MSG_PEER:
		if (cc->phase == COORD_READY)
			apply_peer(dev, cc, &m.u.peer, now_ms);
		break;
	case CONTROL_MSG_PEER_REMOVE: {
		struct peer *p = peer_by_public_key(dev, m.u.remove_key);
		if (cc->phase == COORD_READY && p && p->from_coordinator)
			remove_peer(dev, cc, p, now_ms);
		break;
	}
	case CONTROL_MSG_NETMAP_END:
		if (cc->phase == COORD_READY) {
			sweep_peers(dev, cc, now_ms);
			/* New peers: start handshakes now rather than on the first packet. */
			for (size_t i = 0; i < dev->n_peers; i++)
				if (dev->peers[i]->from_coordinator && !session_usable(&dev->peers[i]->current, now_ms))
					tx_send_initiation(dev, dev->peers[i], now_ms, false);
		}
		break;
	default:
		break; /* keepalive, or a node-to-coordinator type we ignore */
	}
}

/* Every message of one decrypted frame, in order, until one disconnects. */
static void handle_records(struct device *dev, struct coordclient *cc, const uint8_t *plain, size_t len,
			   uint64_t now_ms)
{
	const uint8_t *msg;
	size_t msg_len, off = 0;
	int got;

	while (cc->fd >= 0 && (got = control_record_next(plain, len, &off, &msg, &msg_len)) != 0) {
		if (got < 0) {
			disconnect(dev, cc, now_ms, "malformed frame from the coordinator");
			return;
		}
		handle_message(dev, cc, msg, msg_len, now_ms);
	}
}

static void on_readable(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	for (;;) {
		ssize_t n = recv(cc->fd, cc->rbuf + cc->rlen, sizeof(cc->rbuf) - cc->rlen, MSG_DONTWAIT);
		if (n == 0) {
			disconnect(dev, cc, now_ms, "closed by the coordinator");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				disconnect(dev, cc, now_ms, strerror(errno));
			return;
		}
		cc->rlen += (size_t)n;
		cc->last_rx_ms = now_ms;

		const uint8_t *body;
		size_t body_len, consumed, off = 0;
		int got;
		while (cc->fd >= 0 && (got = control_frame_next(cc->rbuf + off, cc->rlen - off, &body, &body_len,
								 &consumed)) != 0) {
			if (got < 0) {
				disconnect(dev, cc, now_ms, "bad frame from the coordinator");
				return;
			}
			off += consumed;
			if (cc->phase == COORD_HELLO_SENT) {
				if (!control_client_finish(&cc->ch, body, body_len)) {
					disconnect(dev, cc, now_ms, "handshake failed: wrong coordinator public key?");
					return;
				}
				cc->phase = COORD_REGISTERING;
				send_register(dev, cc, now_ms);
				continue;
			}
			uint8_t plain[CONTROL_MAX_PLAIN];
			size_t plain_len;
			if (!control_open(&cc->ch, body, body_len, plain, sizeof(plain), &plain_len)) {
				disconnect(dev, cc, now_ms, "message from the coordinator failed authentication");
				return;
			}
			handle_records(dev, cc, plain, plain_len, now_ms);
		}
		if (cc->fd < 0)
			return;
		memmove(cc->rbuf, cc->rbuf + off, cc->rlen - off);
		cc->rlen -= off;
	}
}

/* The coordinator's address. A name is resolved here, which blocks: done once at start-up
 * and retried on a reconnect only while it has never resolved, so a slow resolver cannot
 * stall the data path on every reconnect. */
static const char *resolve_coordinator(struct device *dev, struct coordclient *cc)
{
	if (cc->coord_addr_len)
		return NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", cc->state.coord_port);
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;
	int rc = getaddrinfo(cc->state.coord_host, port, &hints, &res);
	if (rc != 0)
		return gai_strerror(rc);
	memcpy(&cc->coord_addr, res->ai_addr, res->ai_addrlen);
	cc->coord_addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	/* STUN goes to the same host, standard port, from the data socket. */
	struct sockaddr_storage stun_addr = cc->coord_addr;
	((struct sockaddr_in *)&stun_addr)->sin_port = htons(STUN_DEFAULT_PORT); /* same offset in sockaddr_in6 */
	cc->have_stun_server = device_socket_address(dev, (struct sockaddr *)&stun_addr, &cc->stun_server);
	return NULL;
}

static void start_connect(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	const char *why = resolve_coordinator(dev, cc);
	if (why) {
		disconnect(dev, cc, now_ms, why);
		return;
	}
	cc->fd = socket(cc->coord_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (cc->fd < 0 || (connect(cc->fd, (struct sockaddr *)&cc->coord_addr, cc->coord_addr_len) < 0 &&
			   errno != EINPROGRESS)) {
		disconnect(dev, cc, now_ms, strerror(errno));
		return;
	}

	int one = 1;
	setsockopt(cc->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	cc->phase = COORD_CONNECTING;
	cc->phase_deadline_ms = now_ms + COORD_CONNECT_TIMEOUT_MS;
	watch(dev, cc, EPOLLOUT);
}

static void on_connected(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	if (getsockopt(cc->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 || soerr != 0) {
		disconnect(dev, cc, now_ms, strerror(soerr ? soerr : errno));
		return;
	}
	uint8_t timestamp[WIRE_TIMESTAMP_LEN], frame[CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN];
	size_t frame_len;
	handshake_tai64n(timestamp, clock_realtime());
	if (!control_client_hello(&cc->ch, dev->identity.private_key, cc->state.coord_public, timestamp, NULL, frame,
				  sizeof(frame), &frame_len) ||
	    !queue_frame(cc, frame, frame_len)) {
		disconnect(dev, cc, now_ms, "cannot start the handshake");
		return;
	}
	cc->phase = COORD_HELLO_SENT;
	cc->last_rx_ms = cc->last_tx_ms = now_ms;
	flush_writes(dev, cc, now_ms);
}

void coordclient_on_io(struct device *dev, uint32_t events, uint64_t now_ms)
{
	struct coordclient *cc = dev->coord;
	if (cc->fd < 0)
		return;
	if (cc->phase == COORD_CONNECTING) {
		on_connected(dev, cc, now_ms);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(dev, cc, now_ms);
	if (cc->fd >= 0 && (events & EPOLLOUT))
		flush_writes(dev, cc, now_ms);
}

/* ---------------------------------------------------------------- STUN */

static void send_stun(struct device *dev, struct coordclient *cc, uint64_t now_ms)
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
		report_endpoints_if_changed(dev, cc, now_ms);
	}
	return true;
}

/* ---------------------------------------------------------------- loop hooks */

void coordclient_tick(struct device *dev, uint64_t now_ms)
{
	struct coordclient *cc = dev->coord;

	if (cc->phase == COORD_IDLE && now_ms >= cc->next_connect_ms)
		start_connect(dev, cc, now_ms);
	else if ((cc->phase == COORD_CONNECTING || cc->phase == COORD_HELLO_SENT || cc->phase == COORD_REGISTERING) &&
		 now_ms >= cc->phase_deadline_ms)
		disconnect(dev, cc, now_ms, "timed out");
	else if (cc->phase == COORD_READY) {
		if (now_ms - cc->last_rx_ms >= COORD_DEAD_AFTER_MS) {
			disconnect(dev, cc, now_ms, "no answer for 75 s");
		} else if (now_ms - cc->last_tx_ms >= COORD_KEEPALIVE_MS) {
			struct control_message m = { .type = CONTROL_MSG_KEEPALIVE };
			send_message(dev, cc, &m, now_ms);
		}
		if (cc->phase == COORD_READY && cc->have_stun_server && now_ms >= cc->stun_next_ms)
			send_stun(dev, cc, now_ms);
		if (cc->phase == COORD_READY && now_ms >= cc->endpoint_check_ms)
			report_endpoints_if_changed(dev, cc, now_ms);
	}
	if (cc->state_dirty && now_ms - cc->state_dirty_since_ms >= COORD_STATE_SAVE_DELAY_MS)
		save_state(dev, cc);
}

uint64_t coordclient_next_deadline(const struct device *dev)
{
	const struct coordclient *cc = dev->coord;
	uint64_t next = UINT64_MAX;
#define EARLIER(t) do { if ((t) < next) next = (t); } while (0)
	switch (cc->phase) {
	case COORD_IDLE:
		EARLIER(cc->next_connect_ms);
		break;
	case COORD_CONNECTING:
	case COORD_HELLO_SENT:
	case COORD_REGISTERING:
		EARLIER(cc->phase_deadline_ms);
		break;
	case COORD_READY:
		EARLIER(cc->last_rx_ms + COORD_DEAD_AFTER_MS);
		EARLIER(cc->last_tx_ms + COORD_KEEPALIVE_MS);
		if (cc->have_stun_server)
			EARLIER(cc->stun_next_ms);
		EARLIER(cc->endpoint_check_ms);
		break;
	}
	if (cc->state_dirty)
		EARLIER(cc->state_dirty_since_ms + COORD_STATE_SAVE_DELAY_MS);
#undef EARLIER
	return next;
}

int coordclient_fd(const struct device *dev)
{
	return dev->coord ? dev->coord->fd : -1;
}

/* ---------------------------------------------------------------- setup */

bool coordclient_state_has_addresses(const char *state_dir)
{
	struct node_state st;
	char err[256];
	bool has = state_dir[0] && state_load(&st, state_dir, err, sizeof(err)) && st.registered;
	state_free(&st);
	return has;
}

bool coordclient_open(struct device *dev, const struct config *cfg, const struct joinkey *join, char *err,
		      size_t err_len)
{
	if (!cfg->state_dir[0]) {
		if (join) {
			snprintf(err, err_len, "joining a coordinator needs 'state_dir:' in the config");
			return false;
		}
		return true;
	}
	struct coordclient *cc = calloc(1, sizeof(*cc));
	if (!cc) {
		snprintf(err, err_len, "out of memory");
		return false;
	}
	cc->fd = -1;
	cc->backoff_ms = COORD_BACKOFF_MIN_MS;
	cc->mapping_varies = -1;
	snprintf(cc->state_dir, sizeof(cc->state_dir), "%s", cfg->state_dir);
	if (!state_load(&cc->state, cfg->state_dir, err, err_len)) {
		free(cc);
		return false;
	}
	if (join) {
		if (cc->state.has_coordinator &&
		    sodium_memcmp(cc->state.coord_public, join->coord_public, WIRE_KEY_LEN) != 0)
			log_warn("the join key names a different coordinator than the saved state; using the join key");
		cc->join = *join;
		cc->have_join = true;
		cc->state.has_coordinator = true;
		snprintf(cc->state.coord_host, sizeof(cc->state.coord_host), "%s", join->host);
		cc->state.coord_port = join->port;
		memcpy(cc->state.coord_public, join->coord_public, WIRE_KEY_LEN);
	}
	if (!cc->state.has_coordinator) {
		state_free(&cc->state);
		free(cc);
		return true; /* a state directory, but no coordinator: static peers only */
	}
	dev->coord = cc;

	/* What we knew before: our addresses and the last peer map, so tunnels work at once,
	 * with or without the coordinator. */
	if (cc->state.registered && (!device_add_address(dev, &cc->state.ipv4, err, err_len) ||
				     !device_add_address(dev, &cc->state.ipv6, err, err_len)))
		return false;
	uint64_t now_ms = clock_monotonic_ms();
	for (size_t i = 0; i < cc->state.n_peers; i++)
		apply_peer(dev, cc, &cc->state.peers[i], now_ms);
	cc->state_dirty = false;
	cc->next_connect_ms = now_ms;
	if (resolve_coordinator(dev, cc))
		log_warn("cannot resolve the coordinator %s yet; will retry", cc->state.coord_host);
	return true;
}

void coordclient_close(struct device *dev)
{
	struct coordclient *cc = dev->coord;
	if (!cc)
		return;
	if (cc->state_dirty)
		save_state(dev, cc);
	if (cc->fd >= 0)
		close(cc->fd);
	control_channel_clear(&cc->ch);
	joinkey_clear(&cc->join);
	state_free(&cc->state);
	sodium_memzero(cc, sizeof(*cc));
	free(cc);
	dev->coord = NULL;
}
