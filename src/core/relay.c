/* Relay frames (layout in relay.h). */
#include "relay.h"

#include <sodium.h>
#include <string.h>

static bool header_is(const uint8_t *buf, size_t len, enum wire_message_type type)
{
	return buf && wire_header_type(buf, len) == type;
}

static void mac(uint8_t out[RELAY_MAC_LEN], const uint8_t *msg, size_t len, const uint8_t token[RELAY_TOKEN_LEN])
{
	crypto_generichash(out, RELAY_MAC_LEN, msg, len, token, RELAY_TOKEN_LEN);
}

static bool mac_ok(const uint8_t *msg, size_t mac_off, const uint8_t token[RELAY_TOKEN_LEN])
{
	uint8_t want[RELAY_MAC_LEN];
	mac(want, msg, mac_off, token);
	return sodium_memcmp(want, msg + mac_off, RELAY_MAC_LEN) == 0;
}

void relay_build_bind(uint8_t out[RELAY_BIND_LEN], const uint8_t node_key[WIRE_KEY_LEN], uint64_t counter,
		      const uint8_t token[RELAY_TOKEN_LEN])
{
	wire_put_header(out, MSG_RELAY_BIND);
	memcpy(out + RELAY_BIND_OFF_KEY, node_key, WIRE_KEY_LEN);
	wire_put_u64(out + RELAY_BIND_OFF_COUNTER, counter);
	mac(out + RELAY_BIND_OFF_MAC, out, RELAY_BIND_OFF_MAC, token);
}

const uint8_t *relay_bind_key(const uint8_t *buf, size_t len)
{
	if (len != RELAY_BIND_LEN || !header_is(buf, len, MSG_RELAY_BIND))
		return NULL;
	return buf + RELAY_BIND_OFF_KEY;
}

bool relay_check_bind(const uint8_t *buf, size_t len, const uint8_t token[RELAY_TOKEN_LEN], uint64_t *counter)
{
	if (!relay_bind_key(buf, len) || !mac_ok(buf, RELAY_BIND_OFF_MAC, token))
		return false;
	*counter = wire_get_u64(buf + RELAY_BIND_OFF_COUNTER);
	return true;
}

void relay_build_bind_ack(uint8_t out[RELAY_BIND_ACK_LEN], uint64_t counter, const uint8_t token[RELAY_TOKEN_LEN])
{
	wire_put_header(out, MSG_RELAY_BIND_ACK);
	wire_put_u64(out + RELAY_ACK_OFF_COUNTER, counter);
	mac(out + RELAY_ACK_OFF_MAC, out, RELAY_ACK_OFF_MAC, token);
}

bool relay_check_bind_ack(const uint8_t *buf, size_t len, const uint8_t token[RELAY_TOKEN_LEN], uint64_t *counter)
{
	if (len != RELAY_BIND_ACK_LEN || !header_is(buf, len, MSG_RELAY_BIND_ACK) ||
	    !mac_ok(buf, RELAY_ACK_OFF_MAC, token))
		return false;
	*counter = wire_get_u64(buf + RELAY_ACK_OFF_COUNTER);
	return true;
}

size_t relay_wrap_data(uint8_t *out, const uint8_t key[WIRE_KEY_LEN], size_t payload_len)
{
	if (payload_len == 0 || payload_len > RELAY_MAX_PAYLOAD)
		return 0;
	wire_put_header(out, MSG_RELAY_DATA);
	memmove(out + RELAY_DATA_OFF_KEY, key, WIRE_KEY_LEN);
	return RELAY_DATA_HEADER_LEN + payload_len;
}

bool relay_parse_data(const uint8_t *buf, size_t len, const uint8_t **key, const uint8_t **payload,
		      size_t *payload_len)
{
	if (len <= RELAY_DATA_HEADER_LEN || len > RELAY_MAX_FRAME || !header_is(buf, len, MSG_RELAY_DATA))
		return false;
	*key = buf + RELAY_DATA_OFF_KEY;
	*payload = buf + RELAY_DATA_OFF_PAYLOAD;
	*payload_len = len - RELAY_DATA_HEADER_LEN;
	return true;
}
