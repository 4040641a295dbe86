/* WireGuard's two handshake messages: the Noise IKpsk2 messages of noise.c framed as in wire.h,
 * with mac1 in front of the cryptography (mac2, the cookie, is core/cookie.c's). Construction,
 * identifier and labels are WireGuard's, so a stock WireGuard peer completes this handshake.
 *
 *   <- s
 *   ******
 *   -> e, es, s, ss, {t}      initiation: header | sender | e | {s} | {t} | mac1 | mac2
 *   <- e, ee, se, psk, {}     response:   header | sender | receiver | e | {} | mac1 | mac2
 *
 * The Noise message is the contiguous middle of each wire message, so noise.c reads and
 * writes it in place. The indices ride outside Noise, covered by mac1 only (as in WireGuard):
 * an on-path attacker who changes one just makes the handshake fail, which it could anyway.
 *
 * Receive order: exact length, header, mac1, and only then any DH. Each consume works on a
 * copy of the handshake and stores it back only after the whole message authenticated.
 */
#include "handshake.h"

#include <string.h>

#include <blake2.h>
#include <sodium.h>

/* WireGuard's CONSTRUCTION and IDENTIFIER (the Noise prologue): changing either breaks
 * compatibility with every WireGuard implementation. */
static const char protocol_name[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char prologue[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";
static const char mac1_label[] = "mac1----";

/* Noise parts of the wire messages, from the offsets in wire.h. */
enum {
	INIT_NOISE_OFF = WIRE_INIT_OFF_EPHEMERAL,
	INIT_NOISE_LEN = WIRE_INIT_OFF_MAC1 - WIRE_INIT_OFF_EPHEMERAL,
	RESP_NOISE_OFF = WIRE_RESP_OFF_EPHEMERAL,
	RESP_NOISE_LEN = WIRE_RESP_OFF_MAC1 - WIRE_RESP_OFF_EPHEMERAL,
};

_Static_assert((int)WIRE_KEY_LEN == (int)NOISE_DH_LEN && (int)WIRE_KEY_LEN == (int)NOISE_KEY_LEN, "key sizes");
_Static_assert((int)WIRE_AEAD_TAG_LEN == (int)NOISE_TAG_LEN, "tag size");
_Static_assert((int)INIT_NOISE_LEN == (int)NOISE_MESSAGE1_OVERHEAD + (int)WIRE_TIMESTAMP_LEN,
	       "initiation carries e, {s}, {t}");
_Static_assert((int)WIRE_INIT_OFF_STATIC == (int)INIT_NOISE_OFF + (int)NOISE_DH_LEN &&
	       (int)WIRE_INIT_OFF_TIMESTAMP == (int)WIRE_INIT_OFF_STATIC + (int)NOISE_DH_LEN + (int)NOISE_TAG_LEN,
	       "noise.c writes message 1 as e || {s} || {t}");
_Static_assert((int)RESP_NOISE_LEN == (int)NOISE_MESSAGE2_OVERHEAD, "response carries e, {}");
_Static_assert((int)WIRE_RESP_OFF_EMPTY == (int)RESP_NOISE_OFF + (int)NOISE_DH_LEN,
	       "noise.c writes message 2 as e || {}");

/* TAI64N (cr.yp.to/libtai/tai64.html): label 2^62 is 1970-01-01 00:00:00 TAI, which was
 * 10 s ahead of UTC then, so Unix time t becomes 2^62 + 10 + t (as in WireGuard; later leap
 * seconds are ignored because only the order of one peer's timestamps matters). */
#define TAI64_UNIX_EPOCH_LABEL ((UINT64_C(1) << 62) + 10)
/* Nanoseconds are rounded down to 2^24 ns (~16.8 ms), as in WireGuard: a receiver learns the
 * initiation time only that coarsely, which hides fine timing from a passive observer, and
 * 16.8 ms still lets a peer initiate ~60 times a second. */
#define TAI64N_NSEC_MASK (~((UINT32_C(1) << 24) - 1))
#define TAI64N_NSEC_PER_SEC 1000000000L

static bool noise_start(struct noise_handshake *noise, enum noise_role role, const uint8_t private_key[WIRE_KEY_LEN],
			const uint8_t *remote_static)
{
	/* A placeholder PSK switches on IKpsk2's "e" rule now; the real one (the caller's, or
	 * zeros) is set just before message 2, the only place that uses it. */
	static const uint8_t no_psk[WIRE_KEY_LEN];

	return noise_handshake_init(noise, protocol_name, sizeof(protocol_name) - 1, (const uint8_t *)prologue,
				    sizeof(prologue) - 1, role, private_key, remote_static, no_psk);
}

static void psk_set(struct noise_handshake *noise, const uint8_t *psk)
{
	static const uint8_t zero_psk[WIRE_KEY_LEN];

	noise_handshake_set_psk(noise, psk ? psk : zero_psk);
}

void handshake_label_key(uint8_t key[WIRE_KEY_LEN], const char label[HANDSHAKE_LABEL_LEN + 1],
			 const uint8_t public_key[WIRE_KEY_LEN])
{
	blake2s_state st;

	blake2s_init(&st, WIRE_KEY_LEN);
	blake2s_update(&st, (const uint8_t *)label, HANDSHAKE_LABEL_LEN);
	blake2s_update(&st, public_key, WIRE_KEY_LEN);
	blake2s_final(&st, key, WIRE_KEY_LEN);
	sodium_memzero(&st, sizeof(st));
}

void handshake_mac(uint8_t mac[WIRE_MAC_LEN], const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len)
{
	blake2s(mac, msg, key, WIRE_MAC_LEN, len, key_len);
}

static void mac1_key_make(uint8_t key[WIRE_KEY_LEN], const uint8_t public_key[WIRE_KEY_LEN])
{
	handshake_label_key(key, mac1_label, public_key);
}

/* mac1 = MAC(mac1 key, every byte before the mac1 field). */
static void mac1_compute(uint8_t mac[WIRE_MAC_LEN], const uint8_t key[WIRE_KEY_LEN], const uint8_t *msg,
			 size_t mac1_off)
{
	handshake_mac(mac, key, WIRE_KEY_LEN, msg, mac1_off);
}

/* Sets mac1 for the receiver's public key and zeroes mac2 (the caller's cookie jar may set it). */
static void macs_add(uint8_t *msg, size_t mac1_off, const uint8_t receiver_public[WIRE_KEY_LEN])
{
	uint8_t key[WIRE_KEY_LEN];

	mac1_key_make(key, receiver_public);
	mac1_compute(msg + mac1_off, key, msg, mac1_off);
	memset(msg + mac1_off + WIRE_MAC_LEN, 0, WIRE_MAC_LEN);
	sodium_memzero(key, sizeof(key));
}

/* Exact length, header and mac1 of a message addressed to `id`: everything that costs no DH. */
static bool message_precheck(const struct handshake_identity *id, enum wire_message_type type, size_t expected_len,
			     size_t mac1_off, const uint8_t *msg, size_t len)
{
	uint8_t mac[WIRE_MAC_LEN];
	bool ok;

	if (!msg || len != expected_len || wire_header_type(msg, len) != type)
		return false;
	mac1_compute(mac, id->mac1_key, msg, mac1_off);
	ok = sodium_memcmp(mac, msg + mac1_off, WIRE_MAC_LEN) == 0;
	sodium_memzero(mac, sizeof(mac));
	return ok;
}

bool handshake_identity_init(struct handshake_identity *id, const uint8_t private_key[WIRE_KEY_LEN])
{
	/* An all-zero key is an unset one, never a generated one. */
	if (sodium_init() < 0 || sodium_is_zero(private_key, WIRE_KEY_LEN))
		return false;
	memmove(id->private_key, private_key, WIRE_KEY_LEN);
	if (crypto_scalarmult_base(id->public_key, id->private_key) != 0 ||
	    sodium_is_zero(id->public_key, WIRE_KEY_LEN)) {
		handshake_identity_clear(id);
		return false;
	}
	mac1_key_make(id->mac1_key, id->public_key);
	return true;
}

void handshake_identity_clear(struct handshake_identity *id)
{
	sodium_memzero(id, sizeof(*id));
}

void handshake_tai64n(uint8_t out[WIRE_TIMESTAMP_LEN], struct timespec realtime)
{
	uint64_t label = TAI64_UNIX_EPOCH_LABEL + (uint64_t)realtime.tv_sec;
	long nsec = realtime.tv_nsec;
	uint32_t coarse;
	int i;

	/* a timespec from clock_gettime() is normalized; anything else must not leave the range */
	if (nsec < 0)
		nsec = 0;
	if (nsec >= TAI64N_NSEC_PER_SEC)
		nsec = TAI64N_NSEC_PER_SEC - 1;
	coarse = (uint32_t)nsec & TAI64N_NSEC_MASK;
	for (i = 0; i < 8; i++)
		out[i] = (uint8_t)(label >> (56 - 8 * i));
	for (i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(coarse >> (24 - 8 * i));
}

bool handshake_create_initiation(struct handshake *hs, const struct handshake_identity *id,
				 const uint8_t remote_static[WIRE_KEY_LEN], uint32_t local_index,
				 const uint8_t timestamp[WIRE_TIMESTAMP_LEN], const uint8_t *ephemeral_private,
				 uint8_t out[WIRE_INITIATION_LEN])
{
	struct handshake next;
	size_t noise_len;
	bool ok = false;

	memset(&next, 0, sizeof(next));
	memset(out, 0, WIRE_INITIATION_LEN);
	if (!noise_start(&next.noise, NOISE_INITIATOR, id->private_key, remote_static))
		goto out;

	wire_put_header(out, MSG_HANDSHAKE_INITIATION);
	wire_put_u32(out + WIRE_INIT_OFF_SENDER, local_index);
	/* e, es, s, ss, {t} */
	if (!noise_write_message1(&next.noise, ephemeral_private, timestamp, WIRE_TIMESTAMP_LEN, out + INIT_NOISE_OFF,
				  INIT_NOISE_LEN, &noise_len) || noise_len != INIT_NOISE_LEN)
		goto out;
	macs_add(out, WIRE_INIT_OFF_MAC1, remote_static);

	next.state = HANDSHAKE_INITIATION_SENT;
	memcpy(next.remote_static, remote_static, WIRE_KEY_LEN);
	next.local_index = local_index;
	*hs = next;
	ok = true;
out:
	if (!ok)
		sodium_memzero(out, WIRE_INITIATION_LEN);
	sodium_memzero(&next, sizeof(next));
	return ok;
}

bool handshake_consume_initiation(struct handshake *hs, const struct handshake_identity *id,
				  const uint8_t *msg, size_t len)
{
	struct handshake next;
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	size_t timestamp_len;
	bool ok = false;

	if (!message_precheck(id, MSG_HANDSHAKE_INITIATION, WIRE_INITIATION_LEN, WIRE_INIT_OFF_MAC1, msg, len))
		return false;

	memset(&next, 0, sizeof(next));
	if (!noise_start(&next.noise, NOISE_RESPONDER, id->private_key, NULL))
		goto out;
	/* e, es, s, ss, {t} */
	if (!noise_read_message1(&next.noise, msg + INIT_NOISE_OFF, INIT_NOISE_LEN, timestamp, sizeof(timestamp),
				 &timestamp_len) || timestamp_len != WIRE_TIMESTAMP_LEN)
		goto out;

	next.state = HANDSHAKE_INITIATION_CONSUMED;
	memcpy(next.remote_static, next.noise.rs, WIRE_KEY_LEN);
	memcpy(next.remote_timestamp, timestamp, WIRE_TIMESTAMP_LEN);
	next.remote_index = wire_get_u32(msg + WIRE_INIT_OFF_SENDER);
	*hs = next;
	ok = true;
out:
	sodium_memzero(&next, sizeof(next));
	sodium_memzero(timestamp, sizeof(timestamp));
	return ok;
}

/* Split() and hand the keys to a new session; k1 is the initiator's sending key. */
static bool session_derive(const struct handshake *hs, bool we_initiated, uint64_t now_ms, struct session *session_out)
{
	uint8_t k1[NOISE_KEY_LEN], k2[NOISE_KEY_LEN];
	bool ok = noise_split(&hs->noise, k1, k2);

	if (ok) {
		if (we_initiated)
			session_init(session_out, k1, k2, hs->local_index, hs->remote_index, true, now_ms);
		else
			session_init(session_out, k2, k1, hs->local_index, hs->remote_index, false, now_ms);
	}
	sodium_memzero(k1, sizeof(k1));
	sodium_memzero(k2, sizeof(k2));
	return ok;
}

/* The handshake is over: its keys live on in the session only. Indices and the peer's key
 * and timestamp stay for the caller. */
static void handshake_finish(struct handshake *hs)
{
	noise_handshake_clear(&hs->noise);
	hs->state = HANDSHAKE_NONE;
}

bool handshake_create_response(struct handshake *hs, const struct handshake_identity *id,
			       const uint8_t psk[WIRE_KEY_LEN], uint32_t local_index,
			       const uint8_t *ephemeral_private, uint64_t now_ms,
			       uint8_t out[WIRE_RESPONSE_LEN], struct session *session_out)
{
	struct handshake next;
	size_t noise_len;
	bool ok = false;

	memset(out, 0, WIRE_RESPONSE_LEN);
	if (hs->state != HANDSHAKE_INITIATION_CONSUMED)
		return false;
	next = *hs;
	next.local_index = local_index;
	psk_set(&next.noise, psk);

	wire_put_header(out, MSG_HANDSHAKE_RESPONSE);
	wire_put_u32(out + WIRE_RESP_OFF_SENDER, next.local_index);
	wire_put_u32(out + WIRE_RESP_OFF_RECEIVER, next.remote_index);
	/* e, ee, se, psk, {} */
	if (!noise_write_message2(&next.noise, ephemeral_private, NULL, 0, out + RESP_NOISE_OFF, RESP_NOISE_LEN,
				  &noise_len) || noise_len != RESP_NOISE_LEN)
		goto out;
	macs_add(out, WIRE_RESP_OFF_MAC1, next.remote_static);
	if (!session_derive(&next, false, now_ms, session_out))
		goto out;

	handshake_finish(&next);
	*hs = next;
	ok = true;
out:
	if (!ok)
		sodium_memzero(out, WIRE_RESPONSE_LEN);
	sodium_memzero(&next, sizeof(next));
	return ok;
}

bool handshake_response_mac1_ok(const struct handshake_identity *id, const uint8_t *msg, size_t len)
{
	return message_precheck(id, MSG_HANDSHAKE_RESPONSE, WIRE_RESPONSE_LEN, WIRE_RESP_OFF_MAC1, msg, len);
}

bool handshake_initiation_mac1_ok(const struct handshake_identity *id, const uint8_t *msg, size_t len)
{
	return message_precheck(id, MSG_HANDSHAKE_INITIATION, WIRE_INITIATION_LEN, WIRE_INIT_OFF_MAC1, msg, len);
}

size_t handshake_mac1_offset(const uint8_t *msg, size_t len)
{
	switch (wire_header_type(msg, len)) {
	case MSG_HANDSHAKE_INITIATION:
		return len == WIRE_INITIATION_LEN ? WIRE_INIT_OFF_MAC1 : 0;
	case MSG_HANDSHAKE_RESPONSE:
		return len == WIRE_RESPONSE_LEN ? WIRE_RESP_OFF_MAC1 : 0;
	default:
		return 0;
	}
}

bool handshake_consume_response(struct handshake *hs, const struct handshake_identity *id,
				const uint8_t psk[WIRE_KEY_LEN], const uint8_t *msg, size_t len,
				uint64_t now_ms, struct session *session_out)
{
	struct handshake next;
	size_t empty_len;
	bool ok = false;

	if (!handshake_response_mac1_ok(id, msg, len))
		return false;
	if (hs->state != HANDSHAKE_INITIATION_SENT || wire_get_u32(msg + WIRE_RESP_OFF_RECEIVER) != hs->local_index)
		return false;

	next = *hs;
	psk_set(&next.noise, psk);
	/* e, ee, se, psk, {} */
	if (!noise_read_message2(&next.noise, msg + RESP_NOISE_OFF, RESP_NOISE_LEN, NULL, 0, &empty_len) ||
	    empty_len != 0)
		goto out;
	next.remote_index = wire_get_u32(msg + WIRE_RESP_OFF_SENDER);
	if (!session_derive(&next, true, now_ms, session_out))
		goto out;

	handshake_finish(&next);
	*hs = next;
	ok = true;
out:
	sodium_memzero(&next, sizeof(next));
	return ok;
}

void handshake_clear(struct handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}
