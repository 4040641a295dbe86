/* Disco on the wire (see probe.h and path.h).
 *
 * A ping goes straight to a candidate address, never through the relay (it tests that
 * address). A pong goes back to the address the ping came from. A call-me-maybe goes through
 * the relay (it must reach a peer whose NAT still drops our packets) and is answered with
 * pings, never with another call-me-maybe, so two nodes cannot start a loop. */
#include "meshd/probe.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "core/disco.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/punch.h"
#include "meshd/relayclient.h"
#include "meshd/tx.h"

/* A ping that answers a ping from a candidate not yet confirmed goes out at most this often
 * per candidate: the peer's ping burst opens our NAT toward it, one answer is enough. */
enum { PROBE_PING_BACK_MIN_MS = 200 };

static const uint8_t *disco_key(struct device *dev, struct peer *p)
{
	if (!p->disco_key_ready)
		p->disco_key_ready = disco_shared_key(p->disco_key, dev->identity.private_key, p->public_key);
	return p->disco_key_ready ? p->disco_key : NULL;
}

size_t probe_seal(struct device *dev, struct peer *p, const struct disco_message *m, uint8_t *out, size_t cap)
{
	const uint8_t *key = disco_key(dev, p);
	if (!key)
		return 0;
	return disco_seal(m, dev->identity.public_key, key, out, cap);
}

/* Seals m into the outbox slot; returns its length or 0. */
static size_t seal_into_slot(struct device *dev, struct peer *p, const struct disco_message *m)
{
	return probe_seal(dev, p, m, device_outbox_slot(dev), dev->outbox.payload_room);
}

static void send_ping(struct device *dev, struct peer *p, size_t i, uint64_t now_ms)
{
	struct sockaddr_storage to = sockaddr_inet_get(&p->path.cand[i].addr);
	if (!tx_probe_allowed(dev, &to, now_ms))
		return;
	struct disco_message m = { .kind = DISCO_PING };
	randombytes_buf(m.txid, sizeof(m.txid));
	size_t len = seal_into_slot(dev, p, &m);
	if (len == 0)
		return;
	tx_to_candidate(dev, p, i, len);
	path_ping_sent(&p->path, i, m.txid, now_ms);
	dev->counters.disco_pings_sent++;
}

static void send_pong(struct device *dev, struct peer *p, const uint8_t txid[DISCO_TXID_LEN],
		      const struct sockaddr_storage *to)
{
	struct disco_message m = { .kind = DISCO_PONG };
	memcpy(m.txid, txid, DISCO_TXID_LEN);
	coordclient_endpoint_from_sockaddr((const struct sockaddr *)to, &m.observed);
	size_t len = seal_into_slot(dev, p, &m);
	if (len == 0)
		return;
	if (dev->rx_punch_peer == p) /* answer through the socket the ping came in on */
		punch_send(dev, p, device_outbox_slot(dev), len, to);
	else
		device_outbox_commit(dev, len, to);
}

static void send_call_me_maybe(struct device *dev, struct peer *p, uint64_t now_ms)
{
	if (!relayclient_available(dev, now_ms))
		return;
	struct disco_message m = { .kind = DISCO_CALL_ME_MAYBE };
	randombytes_buf(m.txid, sizeof(m.txid));
	m.n_endpoints = coordclient_our_endpoints(dev, m.endpoints, CONTROL_MAX_ENDPOINTS);
	size_t len = seal_into_slot(dev, p, &m);
	if (len && relayclient_send(dev, p->public_key, len, now_ms))
		dev->counters.disco_cmm_sent++;
}

static void ping_all(struct device *dev, struct peer *p, uint64_t now_ms)
{
	for (size_t i = 0; i < p->path.n; i++)
		send_ping(dev, p, i, now_ms);
}

size_t probe_ping_all(struct device *dev, struct peer *p, uint64_t now_ms)
{
	ping_all(dev, p, now_ms);
	return p->path.n;
}

enum path_kind probe_path_now(const struct device *dev, const struct peer *p, uint64_t now_ms, int *best)
{
	*best = path_best(&p->path, now_ms);
	if (*best >= 0)
		return PATH_DIRECT;
	bool relay = relayclient_available(dev, now_ms);
	/* The last direct path stays the path until traffic finds it silent: an idle peer's
	 * confirmation runs out by itself (no traffic, so no heartbeats; when traffic resumes
	 * its first packets go by the relay while a ping confirms the path again), and with no
	 * relay (the coordinator down) tx_to_peer sends there anyway. Neither is a change to
	 * log or to show. */
	if (p->path.reported == PATH_DIRECT && p->path.reported_best >= 0 &&
	    (!path_silence_counts(&p->path, now_ms) || (!relay && p->has_endpoint))) {
		*best = p->path.reported_best;
		return PATH_DIRECT;
	}
	return relay ? PATH_RELAY : PATH_NONE;
}

bool probe_report_pending(const struct device *dev, const struct peer *p, uint64_t now_ms)
{
	int best;
	enum path_kind kind = probe_path_now(dev, p, now_ms, &best);
	return kind != p->path.reported || (kind == PATH_DIRECT && best != p->path.reported_best);
}

static void log_path_change(struct device *dev, struct peer *p, uint64_t now_ms, const char *why)
{
	int best;
	enum path_kind kind = probe_path_now(dev, p, now_ms, &best);
	if (kind == p->path.reported && (kind != PATH_DIRECT || best == p->path.reported_best))
		return;
	char addr[64];
	if (kind == PATH_DIRECT) {
		const struct path_candidate *c = &p->path.cand[best];
		sockaddr_format(&c->addr.sa, addr, sizeof(addr));
		if (c->rtt_ms != PATH_RTT_UNKNOWN)
			log_info("peer %s: path direct %s (%s, %u ms)", p->name, addr, why, c->rtt_ms);
		else
			log_info("peer %s: path direct %s (%s)", p->name, addr, why);
		p->path.reported_best = best;
		/* The direct endpoint is also where a coordinator-less fallback would send. */
		p->endpoint = c->addr;
		p->has_endpoint = true;
	} else if (kind == PATH_RELAY) {
		log_info("peer %s: path relay (%s)", p->name,
			 p->path.reported == PATH_DIRECT ? "direct path silent" : "no direct path yet");
	} else if (p->path.reported != PATH_NONE) {
		log_info("peer %s: no path (%s, and no relay)", p->name,
			 p->path.reported == PATH_DIRECT ? "direct path silent" : "no direct path");
	}
	p->path.reported = kind;
}

void probe_tick(struct device *dev, struct peer *p, uint64_t now_ms)
{
	bool session_alive = peer_session_usable(p, now_ms);
	unsigned int acts = path_due(&p->path, now_ms, session_alive);
	if (acts & PATH_ACT_PROBE_ROUND) {
		ping_all(dev, p, now_ms);
		send_call_me_maybe(dev, p, now_ms);
		dev->counters.disco_rounds++;
		punch_maybe_start(dev, p, now_ms);
	}
	if (acts & PATH_ACT_HEARTBEAT) {
		int target = path_best(&p->path, now_ms);
		if (target < 0)
			target = p->path.reported_best;
		if (target >= 0)
			send_ping(dev, p, (size_t)target, now_ms);
	}
	log_path_change(dev, p, now_ms, "pong");
}

static void on_ping(struct device *dev, struct peer *p, const struct disco_message *m,
		    const struct sockaddr_storage *from, uint64_t now_ms)
{
	int learned = path_learn(&p->path, from, dev->rx_punch_peer == p, now_ms);
	send_pong(dev, p, m->txid, from);
	if (learned < 0)
		return; /* out of memory: answered, but no candidate to ping back */
	size_t i = (size_t)learned;
	/* The peer's ping came through its NAT and ours: answer with a ping of our own now, so
	 * our side confirms this path within a round trip instead of at our next round. */
	struct path_candidate *c = &p->path.cand[i];
	if (path_best(&p->path, now_ms) != (int)i &&
	    (!c->ping_outstanding || now_ms - c->ping_sent_ms >= PROBE_PING_BACK_MIN_MS))
		send_ping(dev, p, i, now_ms);
}

void probe_on_disco(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
		    uint64_t now_ms)
{
	const uint8_t *sender = disco_sender(buf, len);
	struct peer *p = sender ? peer_by_public_key(dev, sender) : NULL;
	const uint8_t *key = p ? disco_key(dev, p) : NULL;
	struct disco_message m;
	if (!key || !disco_open(buf, len, key, &m)) {
		dev->counters.rx_disco_invalid++;
		return;
	}
	switch (m.kind) {
	case DISCO_PING:
		if (from) /* a ping tests a direct path; one through the relay tests nothing */
			on_ping(dev, p, &m, from, now_ms);
		break;
	case DISCO_PONG:
		if (!from)
			break;
		if (path_on_pong(&p->path, m.txid, from, dev->rx_punch_peer == p, now_ms) ||
		    punch_on_pong(dev, p, m.txid, from, now_ms)) {
			dev->counters.disco_pongs_matched++;
			log_path_change(dev, p, now_ms, "pong");
		}
		break;
	case DISCO_PUNCH:
		punch_on_request(dev, p, now_ms);
		break;
	case DISCO_CALL_ME_MAYBE: {
		struct sockaddr_storage addrs[CONTROL_MAX_ENDPOINTS];
		size_t n = coordclient_endpoints_to_socket(dev, m.endpoints, m.n_endpoints, addrs);
		path_set_announced(&p->path, addrs, n, now_ms);
		if (path_answer_cmm(&p->path, now_ms)) {
			ping_all(dev, p, now_ms);
			dev->counters.disco_cmm_answered++;
		}
		break;
	}
	}
}
