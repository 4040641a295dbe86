/* Fuzz target: relay frames as the coordinator's relay port and a node's data socket receive
 * them. The input is one datagram, passed with its exact length:
 *
 *   relay_bind_key() then relay_check_bind() under the fixed token (32 x 0x0d); a bind that
 *   checks must be exactly what relay_build_bind() makes of its key and counter;
 *   relay_check_bind_ack() likewise against relay_build_bind_ack();
 *   relay_parse_data(); a frame that parses is rewrapped in a copy (the coordinator swapping
 *   the destination key for the source) to the same length and parsed again.
 *
 * The seeds in tests/fuzz/corpus/fuzz_relay/ (gen_disco_relay_seeds.c) are binds and acks
 * made with that token, so the fuzzer starts past the mac. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_RELAY_TOKEN_BYTE = 0x0d,
};

static void check_bind(const uint8_t *buf, size_t size, const uint8_t token[RELAY_TOKEN_LEN])
{
	const uint8_t *key = relay_bind_key(buf, size);
	uint8_t again[RELAY_BIND_LEN];
	uint64_t counter;
	bool ok = relay_check_bind(buf, size, token, &counter);

	if (!key) {
		if (ok)
			abort();
		return;
	}
	if (size != RELAY_BIND_LEN || key != buf + RELAY_BIND_OFF_KEY)
		abort();
	if (ok) {
		relay_build_bind(again, key, counter, token);
		if (memcmp(again, buf, RELAY_BIND_LEN) != 0)
			abort();
	}
}

static void check_ack(const uint8_t *buf, size_t size, const uint8_t token[RELAY_TOKEN_LEN])
{
	uint8_t again[RELAY_BIND_ACK_LEN];
	uint64_t counter;

	if (!relay_check_bind_ack(buf, size, token, &counter))
		return;
	if (size != RELAY_BIND_ACK_LEN)
		abort();
	relay_build_bind_ack(again, counter, token);
	if (memcmp(again, buf, RELAY_BIND_ACK_LEN) != 0)
		abort();
}

static void check_data(const uint8_t *buf, size_t size)
{
	static const uint8_t source[WIRE_KEY_LEN] = { 0x5e };
	const uint8_t *key, *payload;
	size_t payload_len, n;
	uint8_t *copy;

	if (!relay_parse_data(buf, size, &key, &payload, &payload_len))
		return;
	if (key != buf + RELAY_DATA_OFF_KEY || payload != buf + RELAY_DATA_OFF_PAYLOAD || payload_len == 0 ||
	    payload_len > RELAY_MAX_PAYLOAD || payload_len + RELAY_DATA_HEADER_LEN != size)
		abort();
	copy = malloc(size);
	if (!copy)
		abort();
	memcpy(copy, buf, size);
	n = relay_wrap_data(copy, source, payload_len);
	if (n != size || memcmp(copy + RELAY_DATA_OFF_KEY, source, WIRE_KEY_LEN) != 0 ||
	    memcmp(copy + RELAY_DATA_OFF_PAYLOAD, payload, payload_len) != 0 ||
	    memcmp(copy, buf, WIRE_HEADER_LEN) != 0 || !relay_parse_data(copy, n, &key, &payload, &payload_len))
		abort();
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t token[RELAY_TOKEN_LEN];
	uint8_t *copy;

	if (size > 2 * RELAY_MAX_FRAME || sodium_init() < 0)
		return 0;
	memset(token, FUZZ_RELAY_TOKEN_BYTE, sizeof(token));
	/* a private copy of exactly size bytes, so a read past the end is caught by ASan */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	check_bind(copy, size, token);
	check_ack(copy, size, token);
	check_data(copy, size);
	free(copy);
	return 0;
}
