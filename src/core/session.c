/* Transport data messages: header, counter, and the ChaCha20-Poly1305 sealed padded packet
 * (aead.h). Encrypting and decrypting run once per packet from batch loops, so they never
 * allocate, log or block; session_init prepares the ciphers once per session.
 *
 * Only SESSION_OK means a message was authentic: every error from session_decrypt is about
 * bytes anyone could have sent, so the caller must drop them and change nothing else. */
#include <string.h>

#include <sodium.h>

#include "session.h"

enum {
	/* Noise nonce: 32 zero bits then the 64-bit counter, little-endian. */
	SESSION_NONCE_COUNTER_OFF = 4,
	SESSION_NONCE_LEN = 12,
};

_Static_assert((int)SESSION_NONCE_LEN == (int)AEAD_NONCE_LEN, "IETF nonce size");
_Static_assert((int)WIRE_KEY_LEN == (int)AEAD_KEY_LEN, "AEAD key size");
_Static_assert((int)WIRE_AEAD_TAG_LEN == (int)AEAD_TAG_LEN, "AEAD tag size");
_Static_assert((int)WIRE_DATA_OFF_PAYLOAD == (int)WIRE_DATA_HEADER_LEN, "payload follows the data header");

static void session_nonce(uint8_t nonce[SESSION_NONCE_LEN], uint64_t counter)
{
	memset(nonce, 0, SESSION_NONCE_COUNTER_OFF);
	wire_put_u64(nonce + SESSION_NONCE_COUNTER_OFF, counter);
}

/* Age since the handshake; a clock that seems to go backwards counts as no time passed. */
static uint64_t session_age_ms(const struct session *s, uint64_t now_ms)
{
	return now_ms > s->created_ms ? now_ms - s->created_ms : 0;
}

void session_init(struct session *s, const uint8_t send_key[WIRE_KEY_LEN], const uint8_t recv_key[WIRE_KEY_LEN],
		  uint32_t local_index, uint32_t remote_index, bool we_initiated, uint64_t now_ms)
{
	/* Wipe rather than memset: `s` may still hold the keys of the session it replaces. */
	sodium_memzero(s, sizeof(*s));
	memcpy(s->send_key, send_key, WIRE_KEY_LEN);
	memcpy(s->recv_key, recv_key, WIRE_KEY_LEN);
	s->local_index = local_index;
	s->remote_index = remote_index;
	s->we_initiated = we_initiated;
	s->send_counter = 0;
	replay_init(&s->replay);
	/* NULL (no libcrypto context) is not an error: libsodium then does the same work. */
	s->seal = aead_cipher_new(send_key, true);
	s->open = aead_cipher_new(recv_key, false);
	s->created_ms = now_ms;
	s->valid = true;
}

void session_clear(struct session *s)
{
	replay_free(&s->replay);
	aead_cipher_free(s->seal);
	aead_cipher_free(s->open);
	sodium_memzero(s, sizeof(*s));
	s->valid = false;
}

bool session_usable(const struct session *s, uint64_t now_ms)
{
	return s->valid && session_age_ms(s, now_ms) < SESSION_REJECT_AFTER_TIME_MS &&
	       s->send_counter < SESSION_REJECT_AFTER_MESSAGES;
}

bool session_wants_rekey(const struct session *s, uint64_t now_ms)
{
	if (!s->valid)
		return false;
	if (s->send_counter >= SESSION_REKEY_AFTER_MESSAGES)
		return true;
	return s->we_initiated && session_age_ms(s, now_ms) >= SESSION_REKEY_AFTER_TIME_MS;
}

enum session_result session_encrypt(struct session *s, uint64_t now_ms, const uint8_t *plain, size_t len,
				    uint8_t *out, size_t out_cap, size_t *out_len)
{
	uint8_t nonce[SESSION_NONCE_LEN];
	uint8_t *payload;
	size_t padded, room;
	uint64_t counter;

	if (out_len)
		*out_len = 0;
	if (!s || !out || !out_len || (len && !plain) || len > WIRE_MAX_INNER_PACKET)
		return SESSION_ERR_MALFORMED;
	if (!session_usable(s, now_ms))
		return SESSION_ERR_EXPIRED;
	if (out_cap < WIRE_DATA_MIN_LEN || out_cap - WIRE_DATA_MIN_LEN < len)
		return SESSION_ERR_MALFORMED;

	/* Pad to the next multiple, but a buffer sized exactly for the packet still works:
	 * padding only hides lengths, it is not needed for correctness. */
	room = out_cap - WIRE_DATA_MIN_LEN;
	padded = len + (WIRE_DATA_PADDING - len % WIRE_DATA_PADDING) % WIRE_DATA_PADDING;
	if (padded > room)
		padded = room;

	/* Move the plaintext before writing the header: callers may build the packet in place
	 * at out + WIRE_DATA_OFF_PAYLOAD, or hand a buffer overlapping the header. */
	payload = out + WIRE_DATA_OFF_PAYLOAD;
	if (len && payload != plain)
		memmove(payload, plain, len);
	memset(payload + len, 0, padded - len);

	counter = s->send_counter;
	wire_put_header(out, MSG_DATA);
	wire_put_u32(out + WIRE_DATA_OFF_RECEIVER, s->remote_index);
	wire_put_u64(out + WIRE_DATA_OFF_COUNTER, counter);
	session_nonce(nonce, counter);

	/* The counter is spent even if libcrypto failed: a nonce is never used twice. */
	s->send_counter = counter + 1;
	if (!aead_seal(s->seal, s->send_key, nonce, payload, padded))
		return SESSION_ERR_CIPHER;
	*out_len = WIRE_DATA_HEADER_LEN + padded + WIRE_AEAD_TAG_LEN;
	return SESSION_OK;
}

enum session_result session_decrypt(struct session *s, uint64_t now_ms, const uint8_t *msg, size_t msg_len,
				    uint8_t *plain, size_t plain_cap, size_t *plain_len)
{
	uint8_t nonce[SESSION_NONCE_LEN];
	size_t sealed_len, opened_len;
	uint64_t counter;

	if (plain_len)
		*plain_len = 0;
	if (!s || !msg || !plain_len || msg_len < WIRE_DATA_MIN_LEN)
		return SESSION_ERR_MALFORMED;
	if (wire_header_type(msg, msg_len) != MSG_DATA)
		return SESSION_ERR_MALFORMED;
	/* The caller picks the session by this index; a mismatch means it picked the wrong one. */
	if (wire_get_u32(msg + WIRE_DATA_OFF_RECEIVER) != s->local_index)
		return SESSION_ERR_MALFORMED;
	sealed_len = msg_len - WIRE_DATA_HEADER_LEN;
	opened_len = sealed_len - WIRE_AEAD_TAG_LEN;
	if (opened_len > plain_cap || (opened_len && !plain))
		return SESSION_ERR_MALFORMED;

	if (!session_usable(s, now_ms))
		return SESSION_ERR_EXPIRED;
	counter = wire_get_u64(msg + WIRE_DATA_OFF_COUNTER);
	/* The peer must have rekeyed before reaching this; a counter past it is never accepted,
	 * so the window can never be pushed to where nonces would wrap. */
	if (counter >= SESSION_REJECT_AFTER_MESSAGES)
		return SESSION_ERR_EXPIRED;
	/* Cheap early drop of obvious replays, before spending the AEAD on them. */
	if (!replay_check(&s->replay, counter))
		return SESSION_ERR_REPLAY;

	session_nonce(nonce, counter);
	if (!aead_open(s->open, s->recv_key, nonce, msg + WIRE_DATA_OFF_PAYLOAD, sealed_len, plain)) {
		if (opened_len)
			sodium_memzero(plain, opened_len);
		return SESSION_ERR_AUTH;
	}
	/* Only an authentic packet may move the window. */
	if (!replay_update(&s->replay, counter)) {
		if (opened_len)
			sodium_memzero(plain, opened_len);
		return SESSION_ERR_REPLAY;
	}
	*plain_len = opened_len;
	return SESSION_OK;
}
