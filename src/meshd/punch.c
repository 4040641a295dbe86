/* The birthday punch (see punch.h). */
#include "meshd/punch.h"
#include "meshd/meshroutes.h"

#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/relayclient.h"
#include "meshd/rx.h"

enum {
	/* Datagrams read from one punch socket per poll: a few pings, never a flood. */
	PUNCH_READS_PER_POLL = 8,
	/* Probes sent per tick at most, so a late tick does not burst. */
	PUNCH_PROBES_PER_TICK = 16,
	PUNCH_PORT_SPAN = 65536 - PUNCH_PORT_MIN,
};

/* An IPv4 address (plain or v4-mapped) a NAT could have on the internet side: not private,
 * loopback, link-local or the carrier-grade NAT range. The punch is an IPv4 remedy. */
static bool public_ipv4(const struct sockaddr_storage *ss, uint8_t out[4])
{
	if (ss->ss_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)ss)->sin_addr, 4);
	} else {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			return false;
		memcpy(out, &in6->sin6_addr.s6_addr[12], 4);
	}
	return !(out[0] == 10 || out[0] == 127 || out[0] == 0 || (out[0] == 172 && (out[1] & 0xf0) == 16) ||
		 (out[0] == 192 && out[1] == 168) || (out[0] == 169 && out[1] == 254) ||
		 (out[0] == 100 && (out[1] & 0xc0) == 64) || out[0] >= 224);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	((struct sockaddr_in *)ss)->sin_port = htons(port); /* same offset in sockaddr_in6 */
}

/* The peer's announced public candidates, one per address (their ports do not matter to the
 * easy side, and the hard side's NAT ignores them for the mapping). */
static size_t public_targets(const struct peer *p, struct sockaddr_storage *out)
{
	size_t n = 0;
	for (size_t i = 0; i < p->path.n && n < PUNCH_MAX_TARGETS; i++) {
		const struct path_candidate *c = &p->path.cand[i];
		uint8_t v4[4];
		struct sockaddr_storage addr = sockaddr_inet_get(&c->addr);
		if (!c->from_map || c->via_punch || !public_ipv4(&addr, v4))
			continue;
		bool dup = false;
		for (size_t j = 0; j < n && !dup; j++) {
			struct sockaddr_storage a = out[j], b = addr;
			set_port(&a, 0);
			set_port(&b, 0);
			dup = sockaddr_equal(&a, &b);
		}
		if (!dup)
			out[n++] = addr;
	}
	return n;
}

static struct punch_attempt *new_attempt(struct peer *p, bool hard, uint64_t now_ms)
{
	struct punch_attempt *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->hard = hard;
	a->started_ms = now_ms;
	randombytes_buf(a->txid, sizeof(a->txid));
	a->n_targets = public_targets(p, a->targets);
	p->punch = a;
	p->punch_last_ms = now_ms;
	return a;
}

static void end_attempt(struct device *dev, struct peer *p, int keep_fd)
{
	struct punch_attempt *a = p->punch;
	if (!a)
		return;
	for (size_t i = 0; i < a->n_fds; i++)
		if (a->fds[i] != keep_fd)
			close(a->fds[i]);
	if (a->hard)
		dev->punch_hard_attempts--;
	else
		dev->punch_easy_attempts--;
	sodium_memzero(a, sizeof(*a));
	free(a);
	p->punch = NULL;
}

static int fd_for(const struct device *dev, const struct peer *p)
{
	return dev->rx_punch_peer == p ? dev->rx_punch_fd : p->punch_fd;
}

void punch_send(struct device *dev, struct peer *p, const uint8_t *buf, size_t len,
		const struct sockaddr_storage *to)
{
	int fd = fd_for(dev, p);
	socklen_t alen = to->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	/* One datagram at a time: a punched path is the rare case, batching is for the data
	 * socket. A send error is a lost datagram, as on the data socket. */
	if (fd < 0 || sendto(fd, buf, len, MSG_DONTWAIT, (const struct sockaddr *)to, alen) < 0)
		dev->counters.tx_dropped++;
	else
		dev->counters.tx_datagrams++;
}

/* A ping of the attempt, sealed into the outbox slot; its length or 0. */
static size_t seal_ping(struct device *dev, struct peer *p)
{
	struct disco_message m = { .kind = DISCO_PING };
	memcpy(m.txid, p->punch->txid, DISCO_TXID_LEN);
	return probe_seal(dev, p, &m, device_outbox_slot(dev), dev->outbox.payload_room);
}

void punch_maybe_start(struct device *dev, struct peer *p, uint64_t now_ms)
{
	if (p->punch || p->punch_fd >= 0 || coordclient_mapping_varies(dev) != 1)
		return;
	if (p->punch_last_ms != 0 && now_ms - p->punch_last_ms < PUNCH_RETRY_MS)
		return;
	if (p->path.want_since_ms == 0 || now_ms - p->path.want_since_ms < PUNCH_AFTER_PROBING_MS ||
	    path_best(&p->path, now_ms) >= 0)
		return;
	if (dev->punch_hard_attempts >= PUNCH_MAX_HARD_ATTEMPTS || !relayclient_available(dev, now_ms))
		return;
	struct sockaddr_storage targets[PUNCH_MAX_TARGETS];
	if (public_targets(p, targets) == 0)
		return;
	struct punch_attempt *a = new_attempt(p, true, now_ms);
	if (!a)
		return;
	dev->punch_hard_attempts++;
	dev->counters.punch_attempts++;

	/* The openers: one ping from each new socket to each target. */
	size_t len = seal_ping(dev, p);
	const uint8_t *ping = device_outbox_slot(dev);
	for (size_t i = 0; i < PUNCH_SOCKETS && len; i++) {
		int fd = socket(dev->udp_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break; /* out of descriptors: punch with what we have */
		a->fds[a->n_fds++] = fd;
		meshroutes_mark_socket(fd);
		for (size_t t = 0; t < a->n_targets; t++) {
			socklen_t alen = a->targets[t].ss_family == AF_INET ? sizeof(struct sockaddr_in)
									    : sizeof(struct sockaddr_in6);
			(void)sendto(fd, ping, len, MSG_DONTWAIT, (const struct sockaddr *)&a->targets[t], alen);
		}
	}
	/* Ask the peer to probe (through the relay: its NAT does not let us in yet). */
	struct disco_message req = { .kind = DISCO_PUNCH };
	randombytes_buf(req.txid, sizeof(req.txid));
	size_t req_len = probe_seal(dev, p, &req, device_outbox_slot(dev), dev->outbox.payload_room);
	if (req_len)
		relayclient_send(dev, p->public_key, req_len, now_ms);
	log_info("peer %s: birthday punch: %zu mappings opened toward it, asked it to probe", p->name, a->n_fds);
}

void punch_on_request(struct device *dev, struct peer *p, uint64_t now_ms)
{
	if (coordclient_mapping_varies(dev) == 1) {
		log_debug("peer %s asked for a birthday punch, but our NAT is hard too: relayed", p->name);
		return;
	}
	if (p->punch || path_best(&p->path, now_ms) >= 0)
		return;
	if ((p->punch_last_ms != 0 && now_ms - p->punch_last_ms < PUNCH_RETRY_MS) ||
	    dev->punch_easy_attempts >= PUNCH_MAX_EASY_ATTEMPTS)
		return;
	struct punch_attempt *a = new_attempt(p, false, now_ms);
	if (!a)
		return;
	if (a->n_targets == 0) {
		dev->punch_easy_attempts++;
		end_attempt(dev, p, -1);
		return;
	}
	dev->punch_easy_attempts++;
	dev->counters.punch_attempts++;
	a->probe_next_us = clock_monotonic_us();
	log_info("peer %s: birthday punch: probing its address's ports", p->name);
}

bool punch_on_pong(struct device *dev, struct peer *p, const uint8_t txid[DISCO_TXID_LEN],
		   const struct sockaddr_storage *from, uint64_t now_ms)
{
	struct punch_attempt *a = p->punch;
	if (!a || a->hard || sodium_memcmp(a->txid, txid, DISCO_TXID_LEN) != 0)
		return false;
	char addr[64];
	log_info("peer %s: birthday punch: its port %s answered after %zu probes, %llu ms", p->name,
		 sockaddr_format((const struct sockaddr *)from, addr, sizeof(addr)), a->probes_sent,
		 (unsigned long long)(now_ms - a->started_ms));
	path_confirm_from(&p->path, from, false, now_ms);
	dev->counters.punch_successes++;
	end_attempt(dev, p, -1);
	return true;
}

static bool has_punched_candidate(const struct peer *p)
{
	for (size_t c = 0; c < p->path.n; c++)
		if (p->path.cand[c].via_punch)
			return true;
	return false;
}

/* Hard side: reads what arrived on the attempt's sockets; the first socket through which
 * the peer authenticates wins and the others close. */
static void poll_sockets(struct device *dev, struct peer *p, uint64_t now_ms)
{
	struct punch_attempt *a = p->punch;
	uint8_t buf[RELAY_MAX_FRAME + 1];
	for (size_t i = 0; i < a->n_fds; i++) {
		for (int r = 0; r < PUNCH_READS_PER_POLL; r++) {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t n = recvfrom(a->fds[i], buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
			if (n < 0)
				break;
			if ((size_t)n >= sizeof(buf))
				continue;
			struct sockaddr_storage mapped;
			if (!device_socket_address(dev, (const struct sockaddr *)&from, &mapped))
				continue;
			dev->rx_punch_peer = p;
			dev->rx_punch_fd = a->fds[i];
			rx_datagram(dev, buf, (size_t)n, &mapped, now_ms);
			dev->rx_punch_peer = NULL;
			dev->rx_punch_fd = -1;
			/* The peer authenticated through this socket when it left a punched candidate
			 * (an attempt starts with none: the peer has no punch socket yet). */
			if (has_punched_candidate(p)) {
				int fd = a->fds[i];
				p->punch_fd = fd;
				device_watch_fd(dev, fd, EPOLLIN);
				log_info("peer %s: birthday punch: its probe came through mapping %zu of %zu after %llu ms",
					 p->name, i + 1, a->n_fds, (unsigned long long)(now_ms - a->started_ms));
				dev->counters.punch_successes++;
				end_attempt(dev, p, fd);
				return;
			}
		}
	}
}

static void send_probes(struct device *dev, struct peer *p)
{
	struct punch_attempt *a = p->punch;
	uint64_t now_us = clock_monotonic_us();
	for (int k = 0; k < PUNCH_PROBES_PER_TICK && a->probes_sent < PUNCH_PROBES && a->probe_next_us <= now_us; k++) {
		struct sockaddr_storage to = a->targets[a->probes_sent % a->n_targets];
		set_port(&to, (uint16_t)(PUNCH_PORT_MIN + randombytes_uniform(PUNCH_PORT_SPAN)));
		size_t len = seal_ping(dev, p);
		if (len)
			device_outbox_commit(dev, len, &to);
		a->probes_sent++;
		a->probe_next_us += PUNCH_PROBE_INTERVAL_US;
		dev->counters.punch_probes_sent++;
	}
}

void punch_tick(struct device *dev, struct peer *p, uint64_t now_ms)
{
	struct punch_attempt *a = p->punch;
	if (!a)
		return;
	if (now_ms - a->started_ms >= PUNCH_ATTEMPT_MS) {
		if (a->hard)
			log_info("peer %s: birthday punch: no probe came through our %zu mappings in %d s; staying on "
				 "the relay", p->name, a->n_fds, PUNCH_ATTEMPT_MS / 1000);
		else
			log_info("peer %s: birthday punch: none of %zu probes was answered in %d s; staying on the relay",
				 p->name, a->probes_sent, PUNCH_ATTEMPT_MS / 1000);
		end_attempt(dev, p, -1);
		return;
	}
	if (a->hard)
		poll_sockets(dev, p, now_ms);
	else
		send_probes(dev, p);
}

uint64_t punch_next_deadline(const struct peer *p, uint64_t now_ms)
{
	return p->punch ? now_ms + PUNCH_POLL_MS : UINT64_MAX;
}

void punch_on_readable(struct device *dev, struct peer *p, uint64_t now_ms)
{
	uint8_t buf[RELAY_MAX_FRAME + 1];
	for (int r = 0; r < DEVICE_BATCH; r++) {
		struct sockaddr_storage from, mapped;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(p->punch_fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		if (n < 0)
			return;
		if ((size_t)n >= sizeof(buf) || !device_socket_address(dev, (const struct sockaddr *)&from, &mapped))
			continue;
		dev->rx_punch_peer = p;
		dev->rx_punch_fd = p->punch_fd;
		rx_datagram(dev, buf, (size_t)n, &mapped, now_ms);
		dev->rx_punch_peer = NULL;
		dev->rx_punch_fd = -1;
	}
}

void punch_free(struct device *dev, struct peer *p)
{
	end_attempt(dev, p, -1);
	if (p->punch_fd >= 0)
		close(p->punch_fd);
	p->punch_fd = -1;
}
