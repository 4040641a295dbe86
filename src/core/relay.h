/* Relay frames: UDP between a node's data socket and the coordinator's relay port (the STUN
 * port: STUN messages start with two zero bits, these with 0x81..0x83, so one socket serves
 * both). Through the relay, a node's datagram (handshake, data or disco) reaches another node
 * when no direct path works; the coordinator only ever sees ciphertext.
 *
 *   BIND      node -> coord   header | node key (32) | counter (u64 LE) | mac (16)
 *   BIND_ACK  coord -> node   header | counter (u64 LE) | mac (16)
 *   DATA      node -> coord   header | destination node key (32) | payload
 *             coord -> node   header | source node key (32) | payload
 *
 * The mac is keyed BLAKE2b-128 over everything before it, under the relay token the
 * coordinator gave the node over the encrypted control channel (CONTROL_MSG_RELAY_INFO).
 * A BIND proves that its UDP source belongs to that node; the counter must grow, so a BIND
 * replayed from another address binds nothing. The coordinator forwards DATA only from a
 * bound source, and a forwarded frame is the same size as the one received: the relay never
 * sends more bytes than it got. The ACK is smaller than the BIND it answers. */
#ifndef MESHD_RELAY_H
#define MESHD_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum {
	RELAY_TOKEN_LEN = 32,
	RELAY_MAC_LEN = 16,
	RELAY_BIND_OFF_KEY = WIRE_HEADER_LEN,
	RELAY_BIND_OFF_COUNTER = RELAY_BIND_OFF_KEY + WIRE_KEY_LEN,
	RELAY_BIND_OFF_MAC = RELAY_BIND_OFF_COUNTER + 8,
	RELAY_BIND_LEN = RELAY_BIND_OFF_MAC + RELAY_MAC_LEN, /* 60 */
	RELAY_ACK_OFF_COUNTER = WIRE_HEADER_LEN,
	RELAY_ACK_OFF_MAC = RELAY_ACK_OFF_COUNTER + 8,
	RELAY_BIND_ACK_LEN = RELAY_ACK_OFF_MAC + RELAY_MAC_LEN, /* 28 */
	RELAY_DATA_OFF_KEY = WIRE_HEADER_LEN,
	RELAY_DATA_OFF_PAYLOAD = RELAY_DATA_OFF_KEY + WIRE_KEY_LEN,
	RELAY_DATA_HEADER_LEN = RELAY_DATA_OFF_PAYLOAD, /* 36 */
	/* Largest datagram relayed: a data message of a 1420-byte MTU tunnel is 1452 bytes; this
	 * leaves room for MTUs up to ~3900 and still fits one control frame over TCP. */
	RELAY_MAX_PAYLOAD = 3968,
	RELAY_MAX_FRAME = RELAY_DATA_HEADER_LEN + RELAY_MAX_PAYLOAD,
};

_Static_assert(RELAY_BIND_ACK_LEN < RELAY_BIND_LEN, "an ack never amplifies its bind");

/* Node: a BIND for `counter` (strictly growing, e.g. milliseconds of real time). */
void relay_build_bind(uint8_t out[RELAY_BIND_LEN], const uint8_t node_key[WIRE_KEY_LEN], uint64_t counter,
		      const uint8_t token[RELAY_TOKEN_LEN]);
/* Coordinator: the node key a BIND claims (to find its token), or NULL if buf is not a BIND. */
const uint8_t *relay_bind_key(const uint8_t *buf, size_t len);
/* Coordinator: checks the BIND's mac with the claimed node's token and returns its counter. */
bool relay_check_bind(const uint8_t *buf, size_t len, const uint8_t token[RELAY_TOKEN_LEN], uint64_t *counter);

void relay_build_bind_ack(uint8_t out[RELAY_BIND_ACK_LEN], uint64_t counter, const uint8_t token[RELAY_TOKEN_LEN]);
/* Node: checks an ACK with its token; its counter is returned. */
bool relay_check_bind_ack(const uint8_t *buf, size_t len, const uint8_t token[RELAY_TOKEN_LEN], uint64_t *counter);

/* Writes the DATA header (key = destination from a node, source from the coordinator) in front
 * of a payload already at out + RELAY_DATA_OFF_PAYLOAD. Returns the frame length, or 0 if the
 * payload is empty or above RELAY_MAX_PAYLOAD. */
size_t relay_wrap_data(uint8_t *out, const uint8_t key[WIRE_KEY_LEN], size_t payload_len);
/* Splits a DATA frame; false if it is not one or its payload is empty or too long. */
bool relay_parse_data(const uint8_t *buf, size_t len, const uint8_t **key, const uint8_t **payload,
		      size_t *payload_len);

#endif
