/* The coordinator client: the connection state machine and the messages it carries. The peer
 * map and the state file are coordmap.c's; this node's endpoints and STUN coordendpoints.c's.
 * Driven by loop.c's event loop (on_io, tick, deadlines). */
#include "meshd/publish.h"
#include "meshd/coordclient.h"
#include "meshd/coordclient_internal.h"
#include "meshd/meshroutes.h"

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
#include "meshd/dnsd.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/relayclient.h"
#include "meshd/satellites.h"
#include "meshd/state.h"
#include "meshd/tx.h"


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
	if (why && cc->phase == COORD_READY) {
		log_warn("coordinator connection lost (%s); tunnels keep working, reconnecting", why);
		cc->lost_ms = now_ms;
		cc->failed_attempts = 0;
	} else if (why && cc->failed_attempts++ == 0) {
		log_warn("cannot reach the coordinator %s:%u (%s); retrying in %" PRIu64 " s, then at most every %d s "
			 "(further failures are logged at debug level until it answers)",
			 cc->state.coord_host, cc->state.coord_port, why, cc->backoff_ms / 1000,
			 COORD_BACKOFF_MAX_MS / 1000);
	} else if (why) {
		log_debug("cannot reach the coordinator %s:%u (%s, attempt %u); retrying in %" PRIu64 " s",
			  cc->state.coord_host, cc->state.coord_port, why, cc->failed_attempts, cc->backoff_ms / 1000);
	}
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

bool coordclient_send_message(struct device *dev, struct coordclient *cc, const struct control_message *m, uint64_t now_ms)
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

bool coordclient_send(struct device *dev, const struct control_message *m, uint64_t now_ms)
{
	return coordclient_ready(dev) && coordclient_send_message(dev, dev->coord, m, now_ms);
}

bool coordclient_address(const struct device *dev, struct sockaddr_storage *addr, socklen_t *len, const char **host,
			 uint16_t *port)
{
	const struct coordclient *cc = dev->coord;
	if (!cc || cc->coord_addr_len == 0)
		return false;
	*addr = cc->coord_addr;
	*len = cc->coord_addr_len;
	*host = cc->state.coord_host;
	*port = cc->state.coord_port;
	return true;
}

bool coordclient_ready(const struct device *dev)
{
	return dev->coord && dev->coord->phase == COORD_READY;
}

const char *coordclient_node_name(const struct device *dev)
{
	return dev->coord && dev->coord->state.registered ? dev->coord->state.name : NULL;
}

const char *coordclient_dns_domain(const struct device *dev)
{
	return dev->coord && dev->coord->state.dns_domain[0] ? dev->coord->state.dns_domain : NULL;
}

bool coordclient_self_addresses(const struct device *dev, struct ip_prefix *v4, struct ip_prefix *v6)
{
	if (!dev->coord || !dev->coord->state.registered)
		return false;
	*v4 = dev->coord->state.ipv4;
	*v6 = dev->coord->state.ipv6;
	return true;
}

/* The coordinator's domain (decoded strictly: a valid lower-case DNS domain). */
static void apply_dns(struct device *dev, struct coordclient *cc, const struct control_dns *m, uint64_t now_ms)
{
	if (!strcmp(cc->state.dns_domain, m->domain))
		return;
	if (cc->state.dns_domain[0])
		log_info("mesh DNS domain is now %s (was %s)", m->domain, cc->state.dns_domain);
	else
		log_info("mesh DNS domain is %s", m->domain);
	snprintf(cc->state.dns_domain, sizeof(cc->state.dns_domain), "%s", m->domain);
	coordmap_mark_dirty_urgent(cc, now_ms);
	dnsd_node_changed(dev);
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
	cc->n_reported = coordclient_gather_endpoints(dev, cc, cc->reported);
	memcpy(m.u.reg.endpoints, cc->reported, sizeof(cc->reported));
	m.u.reg.n_endpoints = cc->n_reported;
	cc->endpoint_check_ms = now_ms + COORD_ENDPOINT_CHECK_MS;
	coordclient_send_message(dev, cc, &m, now_ms);
	sodium_memzero(&m, sizeof(m));
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
	if (!state_inside_pin(&cc->state, &v4, &v6)) {
		char a[IP_PREFIX_STR_MAX], b[IP_PREFIX_STR_MAX], pa[IP_PREFIX_STR_MAX], pb[IP_PREFIX_STR_MAX];
		log_error("the coordinator assigned %s and %s, outside the overlay this node joined (%s, %s); refused. "
			  "If the network was renumbered on purpose, remove %s/" STATE_FILE_NAME " and join again",
			  ip_prefix_format(&v4, a, sizeof(a)), ip_prefix_format(&v6, b, sizeof(b)),
			  ip_prefix_format(&cc->state.pin_ipv4, pa, sizeof(pa)),
			  ip_prefix_format(&cc->state.pin_ipv6, pb, sizeof(pb)), cc->state_dir);
		return false;
	}
	bool changed = !cc->state.registered || memcmp(&v4, &cc->state.ipv4, sizeof(v4)) != 0 ||
		       memcmp(&v6, &cc->state.ipv6, sizeof(v6)) != 0;
	char a[IP_PREFIX_STR_MAX], b[IP_PREFIX_STR_MAX], err[256];
	if (cc->lost_ms)
		log_info("coordinator connection restored after %" PRIu64 " s (%u failed attempts): "
			 "registered with coordinator %s:%u as %s (%s, %s)",
			 (now_ms - cc->lost_ms) / 1000, cc->failed_attempts, cc->state.coord_host,
			 cc->state.coord_port, r->name, ip_prefix_format(&v4, a, sizeof(a)),
			 ip_prefix_format(&v6, b, sizeof(b)));
	else
		log_info("registered with coordinator %s:%u as %s (%s, %s)%s", cc->state.coord_host, cc->state.coord_port,
			 r->name, ip_prefix_format(&v4, a, sizeof(a)), ip_prefix_format(&v6, b, sizeof(b)),
			 cc->failed_attempts ? " after failed attempts" : "");
	cc->lost_ms = 0;
	cc->failed_attempts = 0;
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
	state_pin_overlay(&cc->state); /* the first registration pins the overlay for good */
	if (changed)
		dnsd_node_changed(dev); /* the IPv6 service address lives in the new /48 */
	coordmap_mark_dirty_urgent(cc, now_ms);
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
			coordmap_sweep(dev, cc, now_ms);
			/* Its satellites went with it in the registry: not served from the state
			 * file after a restart either. */
			struct control_satellites none = { .n = 0 };
			satellites_apply(dev, &none);
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
		meshroutes_registered(dev, true, now_ms); /* ROUTES, and the router's table */
		publish_registered(dev, now_ms);          /* PUBLISH: what we ask to publish */
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
	case CONTROL_MSG_DNS:
		if (cc->phase == COORD_READY)
			apply_dns(dev, cc, &m.u.dns, now_ms);
		break;
	case CONTROL_MSG_PEER:
		if (cc->phase == COORD_READY)
			coordmap_apply_peer(dev, cc, &m.u.peer, now_ms);
		break;
	case CONTROL_MSG_PEER_REMOVE: {
		struct peer *p = peer_by_public_key(dev, m.u.remove_key);
		if (cc->phase == COORD_READY && p && p->from_coordinator)
			coordmap_remove_peer(dev, cc, p, now_ms);
		break;
	}
	case CONTROL_MSG_PEER_ROUTES:
		if (cc->phase == COORD_READY)
			meshroutes_on_peer_routes(dev, &m.u.peer_routes);
		break;
	case CONTROL_MSG_PEER_SATELLITES:
		if (cc->phase == COORD_READY)
			satellites_behind(dev, &m.u.peer_satellites);
		break;
	case CONTROL_MSG_SATELLITES:
		if (cc->phase == COORD_READY) {
			satellites_apply(dev, &m.u.satellites);
			coordmap_mark_dirty_urgent(cc, now_ms); /* a removed satellite stays removed */
		}
		sodium_memzero(&m.u.satellites, sizeof(m.u.satellites)); /* preshared keys */
		break;
	case CONTROL_MSG_NETMAP_END:
		if (cc->phase == COORD_READY)
			coordmap_complete(dev, cc, now_ms);
		break;
	case CONTROL_MSG_FILTER:
		if (cc->phase == COORD_READY)
			coordmap_apply_filter(dev, cc, &m.u.filter, now_ms);
		break;
	case CONTROL_MSG_PUBLISH_STATE:
		if (cc->phase == COORD_READY)
			publish_on_state(dev, &m.u.publish_state);
		break;
	case CONTROL_MSG_STREAM_OPEN:
		if (cc->phase == COORD_READY)
			publish_on_stream_open(dev, &m.u.stream_open, now_ms);
		sodium_memzero(m.u.stream_open.secret, sizeof(m.u.stream_open.secret));
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
	meshroutes_mark_socket(cc->fd); /* outside an exit node's tunnel */
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
			coordclient_send_message(dev, cc, &m, now_ms);
		}
		if (cc->phase == COORD_READY && cc->have_stun_server && now_ms >= cc->stun_next_ms)
			coordclient_send_stun(dev, cc, now_ms);
		if (cc->phase == COORD_READY && now_ms >= cc->endpoint_check_ms)
			coordclient_report_endpoints(dev, cc, now_ms);
	}
	if (now_ms >= coordmap_save_due_ms(cc))
		coordmap_save(dev, cc, now_ms);
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
	EARLIER(coordmap_save_due_ms(cc));
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
	/* Fail closed: the rules of the last run apply before any packet can arrive. */
	if (cc->state.filter_known) {
		if (!acl_set(&dev->acl, cc->state.filter_active, cc->state.rules, cc->state.n_rules, false)) {
			snprintf(err, err_len, "out of memory restoring the access rules");
			return false;
		}
		if (cc->state.filter_active)
			log_info("access rules: %zu restored from %s/%s; enforced until the coordinator sends new ones",
				 cc->state.n_rules, cc->state_dir, STATE_FILE_NAME);
	}
	for (size_t i = 0; i < cc->state.n_peers; i++)
		coordmap_apply_peer(dev, cc, &cc->state.peers[i], now_ms);
	for (size_t i = 0; i < cc->state.n_routes; i++)
		meshroutes_on_peer_routes(dev, &cc->state.routes[i]);
	if (cc->state.satellites.n) {
		satellites_apply(dev, &cc->state.satellites); /* we are their gateway */
		log_info("satellites: %zu restored from %s/%s", dev->n_satellites, cc->state_dir, STATE_FILE_NAME);
	}
	if (cc->state.registered)
		meshroutes_registered(dev, false, now_ms);
	if (cc->state.registered) {
		char a[IP_PREFIX_STR_MAX];
		log_info("restored from %s/%s: this node is %s (%s) with %zu peers from the last map; tunnels work "
			 "before the coordinator answers", cc->state_dir, STATE_FILE_NAME, cc->state.name,
			 ip_prefix_format(&cc->state.ipv4, a, sizeof(a)), cc->state.n_peers);
	}
	coordmap_drop_saved(cc);
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
		coordmap_save(dev, cc, clock_monotonic_ms());
	if (cc->fd >= 0)
		close(cc->fd);
	control_channel_clear(&cc->ch);
	joinkey_clear(&cc->join);
	state_free(&cc->state);
	sodium_memzero(cc, sizeof(*cc));
	free(cc);
	dev->coord = NULL;
}
