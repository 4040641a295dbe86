/* The relay client (see relayclient.h). */
#include "meshd/relayclient.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "core/clock.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/rx.h"

static bool with_port(const struct device *dev, const struct sockaddr_storage *host, uint16_t port,
		      struct sockaddr_storage *out)
{
	struct sockaddr_storage ss = *host;
	/* sin_port and sin6_port sit at the same offset */
	((struct sockaddr_in *)&ss)->sin_port = htons(port);
	return device_socket_address(dev, (const struct sockaddr *)&ss, out);
}

void relayclient_on_info(struct device *dev, const struct control_relay_info *info,
			 const struct sockaddr_storage *coord, uint64_t now_ms)
{
	struct relayclient *rc = &dev->relay;
	memcpy(rc->token, info->token, RELAY_TOKEN_LEN);
	rc->have_info = with_port(dev, coord, info->stun_port, &rc->addr);
	rc->have_alt_stun = info->alt_stun_port != 0 && with_port(dev, coord, info->alt_stun_port, &rc->alt_stun_addr);
	rc->last_ack_ms = 0;
	rc->next_bind_ms = now_ms;
	if (!rc->have_info)
		log_warn("the coordinator's relay cannot be reached from our UDP socket's address family");
}

void relayclient_reset(struct device *dev)
{
	struct relayclient *rc = &dev->relay;
	sodium_memzero(rc->token, sizeof(rc->token));
	rc->have_info = false;
	rc->last_ack_ms = 0;
}

static void send_bind(struct device *dev, struct relayclient *rc, uint64_t now_ms)
{
	/* Real time in milliseconds keeps the counter growing across our own restarts too;
	 * the coordinator only needs it to grow within one token's life. */
	struct timespec ts = clock_realtime();
	uint64_t counter = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	if (counter <= rc->bind_counter)
		counter = rc->bind_counter + 1;
	rc->bind_counter = counter;
	uint8_t *slot = device_outbox_slot(dev);
	relay_build_bind(slot, dev->identity.public_key, counter, rc->token);
	device_outbox_commit(dev, RELAY_BIND_LEN, &rc->addr);
	rc->next_bind_ms = now_ms + (relayclient_udp_ok(dev, now_ms) ? RELAYCLIENT_BIND_INTERVAL_MS
								     : RELAYCLIENT_BIND_RETRY_MS);
}

void relayclient_tick(struct device *dev, uint64_t now_ms)
{
	struct relayclient *rc = &dev->relay;
	if (rc->have_info && now_ms >= rc->next_bind_ms)
		send_bind(dev, rc, now_ms);
}

uint64_t relayclient_next_deadline(const struct device *dev)
{
	return dev->relay.have_info ? dev->relay.next_bind_ms : UINT64_MAX;
}

bool relayclient_udp_ok(const struct device *dev, uint64_t now_ms)
{
	const struct relayclient *rc = &dev->relay;
	return rc->have_info && rc->last_ack_ms != 0 && now_ms - rc->last_ack_ms < RELAYCLIENT_ACK_FRESH_MS;
}

bool relayclient_available(const struct device *dev, uint64_t now_ms)
{
	return dev->relay.have_info && (relayclient_udp_ok(dev, now_ms) || coordclient_ready(dev));
}

bool relayclient_send(struct device *dev, const uint8_t to[WIRE_KEY_LEN], size_t len, uint64_t now_ms)
{
	struct relayclient *rc = &dev->relay;
	uint8_t *payload = device_outbox_slot(dev);
	if (!rc->have_info)
		return false;
	if (relayclient_udp_ok(dev, now_ms)) {
		uint8_t *frame = payload - RELAY_DATA_HEADER_LEN; /* the slot's headroom */
		size_t frame_len = relay_wrap_data(frame, to, len);
		if (frame_len == 0)
			return false;
		device_outbox_commit_frame(dev, frame_len, &rc->addr);
		rc->tx_udp_frames++;
		return true;
	}
	if (!coordclient_send_relay(dev, to, payload, len, now_ms))
		return false;
	rc->tx_tcp_frames++;
	return true;
}

bool relayclient_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
			     uint64_t now_ms)
{
	struct relayclient *rc = &dev->relay;
	if (!rc->have_info || len < WIRE_HEADER_LEN ||
	    (buf[WIRE_OFF_TYPE] != MSG_RELAY_BIND_ACK && buf[WIRE_OFF_TYPE] != MSG_RELAY_DATA))
		return false;
	if (!sockaddr_equal(from, &rc->addr)) {
		dev->counters.rx_relay_invalid++;
		return true; /* a relay frame, but not from our relay: drop */
	}
	uint64_t counter;
	const uint8_t *key, *payload;
	size_t payload_len;
	if (relay_check_bind_ack(buf, len, rc->token, &counter)) {
		if (counter == rc->bind_counter) {
			if (rc->last_ack_ms == 0)
				log_info("relay: UDP to the coordinator works; relayed traffic goes over UDP");
			rc->last_ack_ms = now_ms;
			rc->next_bind_ms = now_ms + RELAYCLIENT_BIND_INTERVAL_MS;
		}
		return true;
	}
	if (!relay_parse_data(buf, len, &key, &payload, &payload_len)) {
		dev->counters.rx_relay_invalid++;
		return true;
	}
	rc->rx_frames++;
	rx_relayed(dev, key, payload, payload_len, now_ms);
	return true;
}

void relayclient_on_tcp(struct device *dev, const struct control_relay *r, uint64_t now_ms)
{
	dev->relay.rx_frames++;
	rx_relayed(dev, r->node_key, r->payload, r->payload_len, now_ms);
}
