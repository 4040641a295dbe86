/* The encrypted control channel of control.h: a Noise IK handshake in the first two TCP
 * frames, then one ChaCha20-Poly1305 transport message per frame (its plaintext: records).
 *
 *   -> e, es, s, ss, {t}      frame 1: magic | version | Noise message 1 (t: TAI64N)
 *   <- e, ee, se, {}          frame 2: Noise message 2
 *
 * The nonce of a transport frame is implicit: TCP delivers in order, so each side counts the
 * frames it sent and received. A frame that does not open under the expected nonce is a
 * forgery, a replay or a reordering; the caller closes the connection either way.
 *
 * Every step works on a copy of the channel and stores it only on success, so a failure
 * leaves the caller's channel as it was (or, for the two calls that start a channel, empty).
 */
#include "control.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

static const char protocol_name[] = "Noise_IK_25519_ChaChaPoly_BLAKE2b";

enum {
	HELLO_OFF_MAGIC = 0,
	HELLO_OFF_VERSION = 4,
	HELLO_OFF_NOISE = 5,
	HELLO_NOISE_LEN = CONTROL_HELLO_LEN - HELLO_OFF_NOISE,
	HELLO_FRAME_LEN = CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN,
	WELCOME_FRAME_LEN = CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN,
	/* "meshcoord v" plus the decimal version: a 32-bit int never needs more. */
	PROLOGUE_MAX = 32,
};

/* Noise reserves 2^64-1; the last nonce either side may use is 2^64-2. Unreachable in
 * practice, but refusing costs one compare and keeps a nonce from ever repeating. */
static const uint64_t nonce_limit = UINT64_MAX;

_Static_assert((int)WIRE_KEY_LEN == (int)NOISE_DH_LEN, "node keys are Noise static keys");
_Static_assert((int)HELLO_NOISE_LEN == (int)NOISE_MESSAGE1_OVERHEAD + (int)WIRE_TIMESTAMP_LEN,
	       "frame 1 carries e, {s}, {t}");
_Static_assert(CONTROL_HELLO_LEN <= CONTROL_MAX_FRAME && CONTROL_WELCOME_LEN <= CONTROL_MAX_FRAME,
	       "handshake frames fit the frame limit");
_Static_assert(CONTROL_MAX_FRAME <= UINT16_MAX, "frame length fits the 2-byte header");

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)get_be16(p) << 16 | get_be16(p + 2);
}

static bool noise_start(struct noise_handshake *hs, enum noise_role role, const uint8_t private_key[WIRE_KEY_LEN],
			const uint8_t *remote_static)
{
	char prologue[PROLOGUE_MAX];
	int n = snprintf(prologue, sizeof(prologue), "meshcoord v%d", CONTROL_PROTOCOL_VERSION);

	if (n <= 0 || n >= (int)sizeof(prologue))
		return false;
	return noise_handshake_init(hs, protocol_name, sizeof(protocol_name) - 1, (const uint8_t *)prologue, (size_t)n,
				    role, private_key, remote_static, NULL);
}

/* Split() into the channel's keys: k1 carries node -> coordinator, k2 the other way. The
 * handshake state is of no more use and is wiped. */
static bool channel_establish(struct control_channel *ch, bool node_side)
{
	uint8_t k1[NOISE_KEY_LEN], k2[NOISE_KEY_LEN];
	bool ok = noise_split(&ch->hs, k1, k2);

	if (ok) {
		memcpy(ch->send_key, node_side ? k1 : k2, NOISE_KEY_LEN);
		memcpy(ch->recv_key, node_side ? k2 : k1, NOISE_KEY_LEN);
		ch->send_nonce = 0;
		ch->recv_nonce = 0;
		ch->established = true;
	}
	noise_handshake_clear(&ch->hs);
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	return ok;
}

bool control_client_hello(struct control_channel *ch, const uint8_t node_private[WIRE_KEY_LEN],
			  const uint8_t coord_public[WIRE_KEY_LEN], const uint8_t timestamp[WIRE_TIMESTAMP_LEN],
			  const uint8_t *ephemeral_private, uint8_t *out, size_t cap, size_t *out_len)
{
	struct control_channel next;
	size_t noise_len;
	bool ok = false;

	memset(&next, 0, sizeof(next));
	if (!out || cap < HELLO_FRAME_LEN)
		goto out;
	if (!noise_start(&next.hs, NOISE_INITIATOR, node_private, coord_public))
		goto out;

	put_be16(out, CONTROL_HELLO_LEN);
	put_be32(out + CONTROL_FRAME_HEADER_LEN + HELLO_OFF_MAGIC, CONTROL_MAGIC);
	out[CONTROL_FRAME_HEADER_LEN + HELLO_OFF_VERSION] = CONTROL_PROTOCOL_VERSION;
	/* e, es, s, ss, {t} */
	if (!noise_write_message1(&next.hs, ephemeral_private, timestamp, WIRE_TIMESTAMP_LEN,
				  out + CONTROL_FRAME_HEADER_LEN + HELLO_OFF_NOISE, HELLO_NOISE_LEN, &noise_len) ||
	    noise_len != HELLO_NOISE_LEN)
		goto out;
	memcpy(next.remote_static, coord_public, WIRE_KEY_LEN);
	*out_len = HELLO_FRAME_LEN;
	ok = true;
out:
	if (!ok && out)
		sodium_memzero(out, cap < HELLO_FRAME_LEN ? cap : HELLO_FRAME_LEN);
	/* a new channel either way: the handshake in flight, or nothing */
	if (ok)
		*ch = next;
	else
		control_channel_clear(ch);
	sodium_memzero(&next, sizeof(next));
	return ok;
}

bool control_client_finish(struct control_channel *ch, const uint8_t *body, size_t len)
{
	struct control_channel next;
	size_t empty_len;
	bool ok = false;

	if (ch->established || ch->hs.role != NOISE_INITIATOR || ch->hs.step != NOISE_STEP_MESSAGE2)
		return false;
	if (!body || len != CONTROL_WELCOME_LEN)
		return false;
	next = *ch;
	/* e, ee, se, {} */
	if (!noise_read_message2(&next.hs, body, len, NULL, 0, &empty_len) || empty_len != 0)
		goto out;
	if (!channel_establish(&next, true))
		goto out;
	*ch = next;
	ok = true;
out:
	sodium_memzero(&next, sizeof(next));
	return ok;
}

bool control_server_key_init(struct control_server_key *k, const uint8_t coord_private[WIRE_KEY_LEN])
{
	memset(k, 0, sizeof(*k));
	return noise_start(&k->initial, NOISE_RESPONDER, coord_private, NULL);
}

void control_server_key_clear(struct control_server_key *k)
{
	noise_handshake_clear(&k->initial);
	sodium_memzero(k, sizeof(*k));
}

bool control_server_read_hello(struct control_channel *ch, const struct control_server_key *k, const uint8_t *body,
			       size_t len, uint8_t timestamp_out[WIRE_TIMESTAMP_LEN])
{
	struct control_channel next;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	size_t timestamp_len;
	bool ok = false;

	memset(&next, 0, sizeof(next));
	memset(timestamp, 0, sizeof(timestamp));
	/* everything that costs no Diffie-Hellman first: a stray client is turned away cheaply */
	if (!body || len != CONTROL_HELLO_LEN || k->initial.role != NOISE_RESPONDER ||
	    k->initial.step != NOISE_STEP_MESSAGE1)
		goto out;
	if (get_be32(body + HELLO_OFF_MAGIC) != CONTROL_MAGIC || body[HELLO_OFF_VERSION] != CONTROL_PROTOCOL_VERSION)
		goto out;

	/* Initialize() was done once, in control_server_key_init: a copy costs nothing */
	next.hs = k->initial;
	/* e, es, s, ss, {t} */
	if (!noise_read_message1(&next.hs, body + HELLO_OFF_NOISE, HELLO_NOISE_LEN, timestamp, sizeof(timestamp),
				 &timestamp_len) || timestamp_len != WIRE_TIMESTAMP_LEN)
		goto out;
	memcpy(next.remote_static, next.hs.rs, WIRE_KEY_LEN);
	ok = true;
out:
	if (ok) {
		*ch = next;
		memcpy(timestamp_out, timestamp, WIRE_TIMESTAMP_LEN);
	} else {
		control_channel_clear(ch);
		memset(timestamp_out, 0, WIRE_TIMESTAMP_LEN);
	}
	sodium_memzero(&next, sizeof(next));
	sodium_memzero(timestamp, sizeof(timestamp));
	return ok;
}

bool control_server_write_welcome(struct control_channel *ch, const uint8_t *ephemeral_private, uint8_t *out,
				  size_t cap, size_t *out_len)
{
	struct control_channel next;
	size_t noise_len;
	bool ok = false;

	memset(&next, 0, sizeof(next));
	if (ch->established || ch->hs.role != NOISE_RESPONDER || ch->hs.step != NOISE_STEP_MESSAGE2 || !out ||
	    cap < WELCOME_FRAME_LEN)
		goto out;
	next = *ch;
	put_be16(out, CONTROL_WELCOME_LEN);
	/* e, ee, se, {} */
	if (!noise_write_message2(&next.hs, ephemeral_private, NULL, 0, out + CONTROL_FRAME_HEADER_LEN,
				  CONTROL_WELCOME_LEN, &noise_len) || noise_len != CONTROL_WELCOME_LEN)
		goto out;
	if (!channel_establish(&next, false))
		goto out;
	*out_len = WELCOME_FRAME_LEN;
	ok = true;
out:
	if (ok) {
		*ch = next;
	} else {
		control_channel_clear(ch);
		if (out)
			sodium_memzero(out, cap < WELCOME_FRAME_LEN ? cap : WELCOME_FRAME_LEN);
	}
	sodium_memzero(&next, sizeof(next));
	return ok;
}

bool control_server_accept(struct control_channel *ch, const uint8_t coord_private[WIRE_KEY_LEN],
			   const uint8_t *body, size_t len, uint8_t timestamp_out[WIRE_TIMESTAMP_LEN],
			   const uint8_t *ephemeral_private, uint8_t *out, size_t cap, size_t *out_len)
{
	struct control_server_key k;
	bool ok = control_server_key_init(&k, coord_private) &&
		  control_server_read_hello(ch, &k, body, len, timestamp_out) &&
		  control_server_write_welcome(ch, ephemeral_private, out, cap, out_len);

	if (!ok) {
		control_channel_clear(ch);
		memset(timestamp_out, 0, WIRE_TIMESTAMP_LEN);
		if (out)
			sodium_memzero(out, cap < WELCOME_FRAME_LEN ? cap : WELCOME_FRAME_LEN);
	}
	control_server_key_clear(&k);
	return ok;
}

bool control_seal(struct control_channel *ch, const uint8_t *plain, size_t len, uint8_t *out, size_t cap,
		  size_t *out_len)
{
	size_t cipher_len;

	if (!ch->established || ch->send_nonce >= nonce_limit)
		return false;
	if (len > CONTROL_MAX_PLAIN || !out || cap < CONTROL_FRAME_HEADER_LEN + len + NOISE_TAG_LEN)
		return false;
	put_be16(out, (uint16_t)(len + NOISE_TAG_LEN));
	if (!noise_transport_encrypt(ch->send_key, ch->send_nonce, NULL, 0, plain, len, out + CONTROL_FRAME_HEADER_LEN,
				     cap - CONTROL_FRAME_HEADER_LEN, &cipher_len)) {
		sodium_memzero(out, CONTROL_FRAME_HEADER_LEN + len + NOISE_TAG_LEN);
		return false;
	}
	ch->send_nonce++;
	*out_len = CONTROL_FRAME_HEADER_LEN + cipher_len;
	return true;
}

bool control_seal_message(struct control_channel *ch, const struct control_message *m, uint8_t *out, size_t cap,
			  size_t *out_len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t len = 0;
	bool ok = control_record_append(plain, sizeof(plain), &len, m) &&
		  control_seal(ch, plain, len, out, cap, out_len);

	sodium_memzero(plain, len);
	return ok;
}

bool control_open(struct control_channel *ch, const uint8_t *body, size_t len, uint8_t *plain, size_t cap,
		  size_t *plain_len)
{
	if (!ch->established || ch->recv_nonce >= nonce_limit)
		return false;
	if (!body || len < NOISE_TAG_LEN || len > CONTROL_MAX_FRAME || len - NOISE_TAG_LEN > cap)
		return false;
	if (!noise_transport_decrypt(ch->recv_key, ch->recv_nonce, NULL, 0, body, len, plain, cap, plain_len)) {
		/* libsodium zeroes it already; saying so here keeps the promise ours */
		if (plain)
			sodium_memzero(plain, len - NOISE_TAG_LEN);
		return false;
	}
	ch->recv_nonce++;
	return true;
}

int control_frame_next(const uint8_t *buf, size_t len, const uint8_t **body, size_t *body_len, size_t *consumed)
{
	size_t frame_len;

	if (len < CONTROL_FRAME_HEADER_LEN)
		return 0;
	frame_len = get_be16(buf);
	/* judged from the header alone: an oversized frame is never buffered */
	if (frame_len == 0 || frame_len > CONTROL_MAX_FRAME)
		return -1;
	if (len - CONTROL_FRAME_HEADER_LEN < frame_len)
		return 0;
	*body = buf + CONTROL_FRAME_HEADER_LEN;
	*body_len = frame_len;
	*consumed = CONTROL_FRAME_HEADER_LEN + frame_len;
	return 1;
}

void control_channel_clear(struct control_channel *ch)
{
	sodium_memzero(ch, sizeof(*ch));
}
