/* Socket -> TUN. Every message is length-checked against its type before any field is
 * read, and nothing (endpoint, timers, replay window, replies) changes for a message
 * that has not authenticated. Bad messages are counted and logged rate-limited. */
#include "meshd/rx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ipaddr.h"
#include "core/keys.h"
#include "meshd/coordclient.h"
#include "meshd/ctl.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/punch.h"
#include "meshd/relayclient.h"
#include "meshd/satellites.h"
#include "meshd/tun.h"
#include "meshd/tx.h"

/* Where a datagram came from, for logs: an address, or the relay (from == NULL). */
static const char *source_name(const struct sockaddr_storage *from, char *buf, size_t len)
{
	if (!from)
		return "the relay";
	return sockaddr_format((const struct sockaddr *)from, buf, len);
}

/* An authenticated message came from `from` (NULL: through the relay). A static peer's
 * endpoint follows it (roaming); a coordinator peer's path learns that the address works. */
static void authenticated_from(struct device *dev, struct peer *p, const struct sockaddr_storage *from,
			       uint64_t now_ms)
{
	if (!from)
		return;
	if (p->from_coordinator) {
		path_confirm_from(&p->path, from, dev->rx_punch_peer == p, now_ms);
		return;
	}
	if (peer_endpoint_equal(p, from))
		return;
	char was[64] = "none", now[64];
	if (p->has_endpoint)
		sockaddr_format(&p->endpoint.sa, was, sizeof(was));
	sockaddr_format((const struct sockaddr *)from, now, sizeof(now));
	log_info("peer %s: endpoint %s -> %s", p->name, was, now);
	sockaddr_inet_set(&p->endpoint, from);
	p->has_endpoint = true;
}

/* Sends the message of len bytes in the outbox slot back the way `from` came, or on the
 * peer's path when it came through the relay. */
static void reply(struct device *dev, struct peer *p, const struct sockaddr_storage *from, size_t len,
		  uint64_t now_ms)
{
	if (from && dev->rx_punch_peer == p)
		punch_send(dev, p, device_outbox_slot(dev), len, from);
	else if (from)
		device_outbox_commit(dev, len, from);
	else
		tx_to_peer(dev, p, len, now_ms);
}

/* Under load, a handshake message from `from` earns Diffie-Hellman work only if its mac2 proves
 * the sender receives at that address; anything else with a valid mac1 gets a cookie reply
 * (core/cookie.h) and is dropped. Relayed messages pass: the coordinator vouches for their
 * sender. Returns whether to go on with the message. */
static bool admitted_under_load(struct device *dev, const uint8_t *msg, size_t len, bool mac1_ok,
				const struct sockaddr_storage *from, uint64_t now_ms)
{
	uint8_t source[COOKIE_SOURCE_MAX];
	size_t source_len;

	if (!from || !mac1_ok || !cookie_checker_under_load(&dev->cookies, now_ms))
		return true; /* a bad mac1 is refused and counted by the caller */
	source_len = cookie_source_bytes(from, source);
	if (source_len == 0)
		return true;
	if (cookie_checker_mac2_ok(&dev->cookies, msg, len, source, source_len, now_ms)) {
		/* The cookie proves the sender owns its address: now bound what that address costs. */
		struct srclimit_entry *e = srclimit_get(&dev->handshake_limit, (const struct sockaddr *)from, now_ms);
		if (e && srclimit_take(&dev->handshake_limit, e, now_ms))
			return true;
		dev->counters.rx_handshake_ratelimited++;
		return false;
	}
	if (!cookie_checker_reply_allowed(&dev->cookies, now_ms)) {
		dev->counters.rx_handshake_shed++; /* over this second's reply budget: a flood */
		return false;
	}
	if (cookie_reply_create(&dev->cookies, msg, len, source, source_len, now_ms, NULL, device_outbox_slot(dev))) {
		if (dev->rx_punch_peer)
			punch_send(dev, dev->rx_punch_peer, device_outbox_slot(dev), WIRE_COOKIE_REPLY_LEN, from);
		else
			device_outbox_commit(dev, WIRE_COOKIE_REPLY_LEN, from);
		dev->counters.tx_cookie_replies++;
	}
	return false;
}

static void handle_initiation(struct device *dev, const uint8_t *msg, size_t len, const struct sockaddr_storage *from,
			      uint64_t now_ms)
{
	char addr[64];
	struct handshake hs;

	if (!admitted_under_load(dev, msg, len, handshake_initiation_mac1_ok(&dev->identity, msg, len), from, now_ms))
		return;
	if (!handshake_consume_initiation(&hs, &dev->identity, msg, len)) {
		dev->counters.rx_handshake_invalid++;
		char ours[KEY_BASE64_LEN + 1];
		key_to_base64(ours, dev->identity.public_key);
		device_log_limited(dev, DEVICE_LOG_handshake_invalid, now_ms,
			       "handshake from %s did not authenticate: it was made for a different public key "
			       "than ours (%s) or is corrupt; check the key the sender has configured for us",
			       source_name(from, addr, sizeof(addr)), ours);
		handshake_clear(&hs);
		return;
	}

	struct peer *p = peer_by_public_key(dev, hs.remote_static);
	if (!p) {
		dev->counters.rx_handshake_invalid++;
		char theirs[KEY_BASE64_LEN + 1];
		key_to_base64(theirs, hs.remote_static);
		device_log_limited(dev, DEVICE_LOG_handshake_unknown_peer, now_ms,
				   "handshake from %s with public key %s: not a configured peer",
			       source_name(from, addr, sizeof(addr)), theirs);
		handshake_clear(&hs);
		return;
	}
	/* TAI64N compares as a big-endian number; an old or repeated one is a replay. An equal
	 * one is usually our peer's own copy sent to another of our candidate addresses. */
	int age = memcmp(hs.remote_timestamp, p->latest_timestamp, WIRE_TIMESTAMP_LEN);
	if (age <= 0) {
		dev->counters.rx_handshake_replayed++;
		if (age < 0)
			device_log_limited(dev, DEVICE_LOG_handshake_replayed, now_ms,
					   "peer %s: replayed handshake initiation from %s dropped", p->name,
				       source_name(from, addr, sizeof(addr)));
		handshake_clear(&hs);
		return;
	}

	/* Authenticated and fresh: from here on we act on it. The responder's handshake state
	 * lives only here, so an initiation of our own that crossed this one stays valid and
	 * both complete (core/session_set.h says how the two sessions settle). */
	memcpy(p->latest_timestamp, hs.remote_timestamp, WIRE_TIMESTAMP_LEN);
	authenticated_from(dev, p, from, now_ms);
	timers_on_authenticated_received(&p->timers, now_ms);

	/* Room for the session first: without it we do not answer (the initiator retries). */
	struct session_set *sessions = peer_sessions_get(p);
	if (!sessions) {
		dev->counters.handshake_no_memory++;
		log_debug("peer %s: out of memory for a session; initiation not answered", p->name);
		return;
	}
	struct session s;
	uint8_t *slot = device_outbox_slot(dev);
	bool responded = handshake_create_response(&hs, &dev->identity, peer_psk(p), peer_new_local_index(dev, p), NULL,
						   now_ms, slot, &s);
	handshake_clear(&hs);
	if (!responded) {
		log_error("peer %s: could not create a handshake response", p->name);
		return;
	}
	peer_cookie_stamp(p, slot, WIRE_RESPONSE_LEN, now_ms);
	reply(dev, p, from, WIRE_RESPONSE_LEN, now_ms);
	session_set_install_responder(sessions, &s);
	/* Not yet a handshake for status: the initiator may still refuse our response (a
	 * different pre-shared key). last_handshake_unix moves when its first data confirms the
	 * session (handle_data), as WireGuard's latest handshake does; handshakes_completed
	 * counts the session made, either role. */
	timers_on_session_derived(&p->timers, now_ms);
	dev->counters.handshakes_completed++;
	log_debug("peer %s: handshake answered", p->name);
}

static void handle_response(struct device *dev, const uint8_t *msg, size_t len, const struct sockaddr_storage *from,
			    uint64_t now_ms)
{
	char addr[64];

	/* mac1 first: it costs a hash, not a DH, so floods are cheap to refuse. */
	struct peer *p = NULL;
	bool mac1_ok = handshake_response_mac1_ok(&dev->identity, msg, len);
	if (!admitted_under_load(dev, msg, len, mac1_ok, from, now_ms))
		return;
	if (mac1_ok)
		p = peer_by_handshake_index(dev, wire_get_u32(msg + WIRE_RESP_OFF_RECEIVER));
	struct session s;
	/* (peer_by_handshake_index found an initiation in flight: p->handshake is there.) */
	if (!p || !handshake_consume_response(p->handshake, &dev->identity, peer_psk(p), msg, len, now_ms, &s)) {
		dev->counters.rx_handshake_invalid++;
		device_log_limited(dev, DEVICE_LOG_response_invalid, now_ms,
				   "handshake response from %s did not authenticate (no matching "
			       "initiation, wrong public key or pre-shared key)",
			       source_name(from, addr, sizeof(addr)));
		return;
	}

	peer_handshake_end(p); /* done: its state is wiped, what it made is in s */
	struct session_set *sessions = peer_sessions_get(p);
	if (!sessions) {
		session_clear(&s);
		dev->counters.handshake_no_memory++;
		log_debug("peer %s: out of memory for a session; the handshake is dropped", p->name);
		return;
	}
	/* A peer that had no working session is news (first contact, back after its keys
	 * were wiped or after failures); a rekey every two minutes is not. */
	bool was_up = peer_session_usable(p, now_ms);
	authenticated_from(dev, p, from, now_ms);
	session_set_install_initiator(sessions, &s);
	p->last_handshake_unix = (int64_t)time(NULL);
	timers_on_authenticated_received(&p->timers, now_ms);
	timers_on_handshake_complete(&p->timers, now_ms);
	timers_on_session_derived(&p->timers, now_ms);
	dev->counters.handshakes_completed++;
	if (!was_up || p->no_response_warned)
		log_info("peer %s: handshake completed, session up (we initiated, reply from %s)", p->name,
			 source_name(from, addr, sizeof(addr)));
	else
		log_debug("peer %s: handshake completed (rekey)", p->name);
	p->no_response_warned = false;
	/* The responder only starts using the session when it hears from us on it. */
	tx_flush_staged(dev, p, now_ms, true);
}

/* A peer under load asks us to prove our address: keep its cookie; the next initiation (the
 * retry timer sends it) carries mac2. */
static void handle_cookie_reply(struct device *dev, const uint8_t *msg, size_t len, const struct sockaddr_storage *from,
				uint64_t now_ms)
{
	char addr[64];
	struct peer *p = NULL;
	uint32_t receiver;

	/* it answers our initiation (pending handshake) or our response (the session it made) */
	if (cookie_reply_receiver(msg, len, &receiver)) {
		p = peer_by_handshake_index(dev, receiver);
		if (!p)
			peer_session_by_index(dev, receiver, &p);
	}
	if (!p || !p->cookie_jar || !cookie_jar_consume_reply(p->cookie_jar, p->public_key, msg, len, now_ms)) {
		dev->counters.rx_cookie_invalid++;
		device_log_limited(dev, DEVICE_LOG_cookie_invalid, now_ms,
				   "cookie reply from %s did not authenticate (no handshake of ours matches)",
			       source_name(from, addr, sizeof(addr)));
		return;
	}
	dev->counters.rx_cookie_replies++;
	unsigned int suppressed;
	if (log_ratelimit_allow(&p->log_limit, now_ms, &suppressed))
		log_info("peer %s is under load and asked for a cookie: our next handshake proves our address",
			 p->name);
}

static void count_data_failure(struct device *dev, enum session_result r)
{
	if (r == SESSION_ERR_REPLAY)
		dev->counters.rx_data_replayed++;
	else if (r == SESSION_ERR_MALFORMED)
		dev->counters.rx_invalid_size++;
	else
		dev->counters.rx_data_auth_failed++;
}

static void handle_data(struct device *dev, const uint8_t *msg, size_t len, const struct sockaddr_storage *from,
			uint64_t now_ms)
{
	struct peer *p;
	struct session *s = peer_session_by_index(dev, wire_get_u32(msg + WIRE_DATA_OFF_RECEIVER), &p);
	if (!s) {
		dev->counters.rx_data_unknown_index++;
		return;
	}

	/* Decrypt into the next free plain buffer: with offloads the packet waits there for
	 * rx_flush_tun; without, it is written at once and the first buffer is reused. */
	uint8_t *plain = dev->plain_buffers + (size_t)dev->rx_pending_count * dev->plain_slot_size;
	size_t plain_len;
	enum session_result r = session_decrypt(s, now_ms, msg, len, plain, dev->plain_slot_size, &plain_len);
	if (r != SESSION_OK) {
		count_data_failure(dev, r);
		return;
	}

	/* Authenticated: now the peer's state may move. */
	authenticated_from(dev, p, from, now_ms);
	if (s == &p->sessions->next) {
		/* the initiator got our response and uses the session: the handshake is complete */
		bool was_up = session_usable(&p->sessions->current, now_ms);
		char addr[64];
		session_set_confirm_next(p->sessions);
		if (!was_up)
			log_info("peer %s: handshake completed, session up (it initiated, data from %s)", p->name,
				 source_name(from, addr, sizeof(addr)));
		else
			log_debug("peer %s: handshake completed (rekey)", p->name);
		p->last_handshake_unix = (int64_t)time(NULL);
		tx_flush_staged(dev, p, now_ms, false);
	}
	timers_on_authenticated_received(&p->timers, now_ms);
	if (plain_len == 0)
		return; /* keepalive */
	timers_on_data_received(&p->timers, now_ms);
	path_note_activity(&p->path, now_ms);

	/* Cryptokey routing: the inner source must be an address this peer owns. */
	struct ip_packet_info info;
	if (!ip_packet_parse(plain, plain_len, &info)) {
		dev->counters.rx_data_malformed++;
		return;
	}
	if (peer_by_address(dev, info.family, info.src) != p) {
		dev->counters.rx_data_bad_source++;
		device_log_limited(dev, DEVICE_LOG_data_bad_source, now_ms,
				   "peer %s: dropped a packet whose inner source is not one of its addresses",
			       p->name);
		return;
	}
	/* Satellites we serve as their gateway: DNS answered, packets forwarded (satellites.h). */
	struct peer *fwd = NULL;
	if (dev->n_satellites) {
		bool done;
		fwd = satellites_rx(dev, p, plain, &info, now_ms, &done);
		if (done)
			return;
	}
	/* Access rules: after cryptokey routing, so the source is one the peer owns. */
	if (satellites_acl_here(p, fwd) && !acl_allow_rx(&dev->acl, plain, info.total_len, now_ms)) {
		char src[INET6_ADDRSTRLEN];
		dev->counters.rx_acl_dropped++;
		device_log_limited(dev, DEVICE_LOG_acl_dropped, now_ms,
				   "peer %s: dropped a packet from %s that no access rule allows", p->name,
				   inet_ntop(info.family, info.src, src, sizeof(src)) ? src : "?");
		return;
	}
	if (fwd) {
		satellites_forward(dev, p, fwd, plain, &info, now_ms); /* re-encrypted, not to TUN */
		return;
	}
	p->rx_bytes += info.total_len;
	if (dev->tun_features & TUN_FEATURE_VNET_HDR) {
		dev->rx_pending[dev->rx_pending_count++] = (struct gro_packet){ plain, info.total_len };
		if (dev->rx_pending_count == DEVICE_BATCH)
			rx_flush_tun(dev);
		return;
	}
	if (dev->tun_fd >= 0 && write(dev->tun_fd, plain, info.total_len) < 0 && errno != EAGAIN)
		device_log_limited(dev, DEVICE_LOG_tun_write, now_ms, "writing to %s failed: %s", dev->ifname,
				   strerror(errno));
}

void rx_flush_tun(struct device *dev)
{
	struct gro_plan plan;
	struct iovec iov[1 + DEVICE_BATCH];
	uint8_t vnet[VNET_HDR_LEN];

	if (dev->rx_pending_count == 0)
		return;
	gro_plan_make(dev->rx_pending, dev->rx_pending_count, dev->tun_features & TUN_FEATURE_USO, &plan); /* count <= DEVICE_BATCH: cannot fail */
	for (size_t k = 0; k < plan.n_out; k++) {
		const struct gro_output *o = &plan.out[k];
		const struct gro_packet *head = &dev->rx_pending[o->head];
		size_t n_iov = 0;
		vnet_hdr_encode(&o->hdr, vnet);
		iov[n_iov++] = (struct iovec){ vnet, sizeof(vnet) };
		iov[n_iov++] = (struct iovec){ head->data, head->len };
		for (uint16_t i = plan.next[o->head]; i != GRO_NO_NEXT; i = plan.next[i])
			iov[n_iov++] = (struct iovec){ dev->rx_pending[i].data + o->hdr_skip,
						       dev->rx_pending[i].len - o->hdr_skip };
		if (o->n_members > 1) {
			dev->counters.rx_coalesced += o->n_members;
			if (o->hdr.gso_type == VNET_GSO_UDP_L4)
				dev->counters.rx_coalesced_udp += o->n_members;
		}
		if (dev->tun_fd >= 0 && writev(dev->tun_fd, iov, (int)n_iov) < 0 && errno != EAGAIN)
			device_log_limited(dev, DEVICE_LOG_tun_write, clock_monotonic_ms(), "writing to %s failed: %s",
					   dev->ifname, strerror(errno));
	}
	dev->rx_pending_count = 0;
}

/* One message, from `from` or through the relay (NULL): checked against its type's size,
 * then handled. */
static void dispatch(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
		     uint64_t now_ms)
{
	switch (wire_header_type(buf, len)) {
	case MSG_HANDSHAKE_INITIATION:
		if (len != WIRE_INITIATION_LEN)
			goto bad_size;
		handle_initiation(dev, buf, len, from, now_ms);
		return;
	case MSG_HANDSHAKE_RESPONSE:
		if (len != WIRE_RESPONSE_LEN)
			goto bad_size;
		handle_response(dev, buf, len, from, now_ms);
		return;
	case MSG_DATA:
		if (len < WIRE_DATA_MIN_LEN)
			goto bad_size;
		handle_data(dev, buf, len, from, now_ms);
		return;
	case MSG_COOKIE_REPLY:
		if (len != WIRE_COOKIE_REPLY_LEN)
			goto bad_size;
		handle_cookie_reply(dev, buf, len, from, now_ms);
		return;
	case MSG_DISCO:
		probe_on_disco(dev, buf, len, from, now_ms);
		return;
	default:
		dev->counters.rx_invalid_type++;
		return;
	}
bad_size:
	dev->counters.rx_invalid_size++;
}

void rx_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
		 uint64_t now_ms)
{
	dev->counters.rx_datagrams++;
	/* STUN answers to our own requests share the data socket (that is the point: they
	 * report the data path's NAT mapping). They cannot be mistaken for ours: see stun.h. */
	if (dev->ctl && ctl_on_datagram(dev, buf, len, from)) /* netcheck's own STUN answers */
		return;
	if (dev->coord && coordclient_on_datagram(dev, buf, len, from, now_ms))
		return;
	if (dev->coord && relayclient_on_datagram(dev, buf, len, from, now_ms))
		return;
	dispatch(dev, buf, len, from, now_ms);
}

void rx_relayed(struct device *dev, const uint8_t sender[WIRE_KEY_LEN], const uint8_t *buf, size_t len,
		uint64_t now_ms)
{
	/* The relay's word for who sent it is not needed: every message authenticates its
	 * sender itself (Noise, the data session, the disco box). */
	(void)sender;
	dev->counters.rx_relayed++;
	dispatch(dev, buf, len, NULL, now_ms);
}
