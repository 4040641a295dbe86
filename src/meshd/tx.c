/* TUN -> peer: route by inner destination, encrypt with the peer's current session,
 * queue in the UDP outbox (sent by sendmmsg a batch at a time). */
#include "meshd/tx.h"

#include <errno.h>
#include <sys/socket.h>
#include <sodium.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/gso.h"
#include "core/ipaddr.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/punch.h"
#include "meshd/relayclient.h"
#include "meshd/rx.h"
#include "meshd/tun.h"

bool tx_has_path(const struct device *dev, const struct peer *p, uint64_t now_ms)
{
	if (p->from_coordinator && (path_best(&p->path, now_ms) >= 0 || relayclient_available(dev, now_ms)))
		return true;
	return p->has_endpoint;
}

bool tx_probe_allowed(struct device *dev, const struct sockaddr_storage *to, uint64_t now_ms)
{
	struct srclimit_entry *e = srclimit_get(&dev->probe_limit, (const struct sockaddr *)to, now_ms);
	if (e && srclimit_take(&dev->probe_limit, e, now_ms))
		return true;
	dev->counters.tx_probes_limited++;
	return false;
}

void tx_to_candidate(struct device *dev, struct peer *p, size_t i, size_t len)
{
	const struct path_candidate *c = &p->path.cand[i];
	struct sockaddr_storage to = sockaddr_inet_get(&c->addr);
	if (c->via_punch)
		punch_send(dev, p, device_outbox_slot(dev), len, &to);
	else
		device_outbox_commit(dev, len, &to);
}

bool tx_to_peer(struct device *dev, struct peer *p, size_t len, uint64_t now_ms)
{
	if (p->from_coordinator) {
		int best = path_best(&p->path, now_ms);
		if (best >= 0) {
			tx_to_candidate(dev, p, (size_t)best, len);
			return true;
		}
		if (relayclient_available(dev, now_ms) && relayclient_send(dev, p->public_key, len, now_ms)) {
			dev->counters.tx_relayed++;
			return true;
		}
	}
	/* A static peer's endpoint, or a coordinator peer's last direct path while there is
	 * no relay (coordinator down): worth a try. */
	if (p->has_endpoint) {
		struct sockaddr_storage to = sockaddr_inet_get(&p->endpoint);
		device_outbox_commit(dev, len, &to);
		return true;
	}
	dev->counters.tx_no_path++;
	return false;
}

static void queue_encrypted(struct device *dev, struct peer *p, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	uint8_t *slot = device_outbox_slot(dev);
	size_t out_len;

	/* Padding stops at the MTU (as WireGuard's does), so a full packet is never longer
	 * than the MTU allows for. */
	size_t cap = WIRE_DATA_MIN_LEN + (len > dev->mtu ? len : dev->mtu);
	if (cap > dev->outbox.payload_room)
		cap = dev->outbox.payload_room;
	struct session *current = peer_current_session(p);
	if (!current || session_encrypt(current, now_ms, pkt, len, slot, cap, &out_len) != SESSION_OK) {
		dev->counters.tx_dropped++;
		return;
	}
	if (!tx_to_peer(dev, p, out_len, now_ms))
		return;
	timers_on_authenticated_sent(&p->timers, now_ms);
	if (len > 0) {
		timers_on_data_sent(&p->timers, now_ms);
		path_note_activity(&p->path, now_ms);
		p->tx_bytes += len;
	}
}

/* The initiation goes on the peer's path and, while no direct path is confirmed (or when
 * retrying), straight to every candidate too: the copies punch our NAT toward each, and
 * whichever arrives first is answered (the rest are refused as replays, harmlessly). */
static void send_initiation_copies(struct device *dev, struct peer *p, const uint8_t *msg, bool is_retry,
				   uint64_t now_ms)
{
	memcpy(device_outbox_slot(dev), msg, WIRE_INITIATION_LEN);
	tx_to_peer(dev, p, WIRE_INITIATION_LEN, now_ms);
	int best = path_best(&p->path, now_ms);
	if (!p->from_coordinator || (best >= 0 && !is_retry))
		return;
	for (size_t i = 0; i < p->path.n; i++) {
		if ((int)i == best)
			continue;
		struct sockaddr_storage to = sockaddr_inet_get(&p->path.cand[i].addr);
		if (!tx_probe_allowed(dev, &to, now_ms))
			continue;
		memcpy(device_outbox_slot(dev), msg, WIRE_INITIATION_LEN);
		tx_to_candidate(dev, p, i, WIRE_INITIATION_LEN);
	}
}

void tx_send_initiation(struct device *dev, struct peer *p, uint64_t now_ms, bool is_retry)
{
	if (!tx_has_path(dev, p, now_ms) && p->path.n == 0)
		return; /* nowhere to send it; the peer must reach us first */
	if (!is_retry && p->last_initiation_sent_ms != 0 &&
	    now_ms - p->last_initiation_sent_ms < TIMER_REKEY_TIMEOUT_MS)
		return; /* one is in flight; the retransmit timer covers it */

	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	handshake_tai64n(timestamp, clock_realtime());
	uint8_t msg[WIRE_INITIATION_LEN];
	struct handshake *hs = peer_handshake_start(p);
	if (!hs) {
		dev->counters.handshake_no_memory++;
		log_debug("peer %s: out of memory for a handshake; the next timer tries again", p->name);
		return;
	}
	if (!handshake_create_initiation(hs, &dev->identity, p->public_key, peer_new_local_index(dev, p), timestamp,
					 NULL, msg)) {
		log_error("peer %s: could not create a handshake initiation (bad peer public key?)", p->name);
		peer_handshake_end(p);
		return;
	}
	peer_cookie_stamp(p, msg, sizeof(msg), now_ms);
	send_initiation_copies(dev, p, msg, is_retry, now_ms);
	p->last_initiation_sent_ms = now_ms;
	timers_on_handshake_initiated(&p->timers, now_ms, randombytes_uniform(TIMER_REKEY_TIMEOUT_JITTER_MS + 1),
				      is_retry);
	log_debug("peer %s: handshake initiation sent%s", p->name, is_retry ? " (retry)" : "");
}

void tx_send_keepalive(struct device *dev, struct peer *p, uint64_t now_ms)
{
	if (!tx_has_path(dev, p, now_ms) || !peer_session_usable(p, now_ms))
		return;
	queue_encrypted(dev, p, NULL, 0, now_ms);
}

void tx_send_packet(struct device *dev, struct peer *p, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	acl_note_tx(&dev->acl, pkt, len, now_ms); /* its replies may pass the access rules */
	if (peer_session_usable(p, now_ms) && tx_has_path(dev, p, now_ms)) {
		queue_encrypted(dev, p, pkt, len, now_ms);
		if (session_wants_rekey(&p->sessions->current, now_ms))
			tx_send_initiation(dev, p, now_ms, false);
		return;
	}
	peer_stage_packet(dev, p, pkt, len, &dev->counters.tx_dropped);
	tx_send_initiation(dev, p, now_ms, false);
}

void tx_flush_staged(struct device *dev, struct peer *p, uint64_t now_ms, bool keepalive_if_empty)
{
	const uint8_t *pkt;
	size_t len;
	if (p->staged.count == 0) {
		if (keepalive_if_empty)
			tx_send_keepalive(dev, p, now_ms);
		return;
	}
	while ((pkt = stage_front(&dev->stage, &p->staged, &len)) != NULL) {
		queue_encrypted(dev, p, pkt, len, now_ms);
		stage_pop(&dev->stage, &p->staged); /* wipes the slot */
	}
}

static bool is_multicast(const struct ip_packet_info *info)
{
	if (info->family == AF_INET)
		return (info->dst[0] & 0xf0) == 0xe0; /* 224.0.0.0/4 */
	return info->dst[0] == 0xff;                  /* ff00::/8 */
}

/* The peer a packet from the TUN goes to, or NULL (counted) when nobody owns it, or when
 * it was for the mesh's DNS address and is answered here (dnsd.h). */
static struct peer *route(struct device *dev, uint8_t *pkt, size_t len, struct ip_packet_info *info,
			  uint64_t now_ms)
{
	if (!ip_packet_parse(pkt, len, info))
		return NULL; /* the kernel only hands us IP, but stay strict */
	if (dev->dns && dnsd_intercept(dev, pkt, info, now_ms))
		return NULL;
	struct peer *p = peer_by_address(dev, info->family, info->dst);
	if (!p && !is_multicast(info)) /* multicast: the kernel's own IPv6 neighbour/MLD chatter */
		dev->counters.tx_no_route++;
	return p;
}

/* One read with offloads: a virtio header and a packet, maybe a super-packet that is
 * split here into the packets the stack would have sent. All segments share addresses,
 * so the first one's route serves them all. Returns how many packets it produced. */
static unsigned int tx_offloaded_read(struct device *dev, size_t n, uint64_t now_ms)
{
	struct vnet_hdr h;
	struct gso_plan plan;
	struct ip_packet_info info;
	struct peer *p = NULL;
	const uint8_t *pkt = dev->tun_read_buf + VNET_HDR_LEN;

	if (!vnet_hdr_decode(dev->tun_read_buf, n, &h) || !gso_plan_make(&h, pkt, n - VNET_HDR_LEN, &plan)) {
		dev->counters.tx_offload_invalid++;
		return 1;
	}
	for (size_t i = 0; i < plan.n_segments; i++) {
		/* Each segment is cut straight into the next outbox slot, where its data message
		 * will be: session_encrypt then seals it in place instead of copying it there.
		 * Whatever else happens to it (staged, dropped) leaves the slot free for reuse. */
		uint8_t *seg = device_outbox_slot(dev) + WIRE_DATA_OFF_PAYLOAD;
		size_t room = dev->outbox.payload_room - WIRE_DATA_MIN_LEN;
		size_t len = gso_segment(&plan, pkt, i, seg, room < dev->plain_slot_size ? room : dev->plain_slot_size);
		if (len == 0) {
			dev->counters.tx_dropped++; /* larger than our MTU: the kernel would not do that */
			continue;
		}
		if (!p && !(p = route(dev, seg, len, &info, now_ms)))
			return 1;
		if (!ip_packet_parse(seg, len, &info))
			continue;
		tx_send_packet(dev, p, seg, info.total_len, now_ms);
	}
	if (plan.n_segments > 1)
		dev->counters.tx_segmented += plan.n_segments;
	return (unsigned int)plan.n_segments;
}

bool tx_from_tun(struct device *dev, uint64_t now_ms)
{
	bool vnet = dev->tun_features & TUN_FEATURE_VNET_HDR;
	rx_flush_tun(dev); /* decrypted packets still waiting there would be overwritten */
	/* Packets, not reads, are the budget: one read may bring forty. */
	for (unsigned int done = 0; done < DEVICE_BATCH;) {
		uint8_t *pkt = vnet ? dev->tun_read_buf : dev->plain_buffers + (size_t)done * dev->plain_slot_size;
		ssize_t n = read(dev->tun_fd, pkt, vnet ? DEVICE_TUN_READ_MAX : dev->plain_slot_size);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				device_log_limited(dev, DEVICE_LOG_tun_read, now_ms, "reading from %s failed: %s",
						   dev->ifname, strerror(errno));
			return false;
		}
		if (vnet) {
			done += tx_offloaded_read(dev, (size_t)n, now_ms);
			continue;
		}
		done++;
		struct ip_packet_info info;
		struct peer *p = route(dev, pkt, (size_t)n, &info, now_ms);
		if (p)
			tx_send_packet(dev, p, pkt, info.total_len, now_ms);
	}
	return true; /* a full batch: there may be more */
}
