/* The work connection's framing (pubwire.h). */
#include "pubwire.h"

#include <string.h>

#include <sodium.h>

/* crypto_kdf's context: 8 bytes naming what the keys are for. */
static const char kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "mshwork1";

enum {
	KDF_ID_NODE_TO_COORD = 1,
	KDF_ID_COORD_TO_NODE = 2,
	PREAMBLE_OFF_MAGIC = 0,
	PREAMBLE_OFF_VERSION = 4,
	PREAMBLE_OFF_ID = 5,
};

_Static_assert(CONTROL_STREAM_SECRET_LEN == crypto_kdf_KEYBYTES, "the stream secret is a KDF key");
_Static_assert(NOISE_KEY_LEN >= crypto_kdf_BYTES_MIN && NOISE_KEY_LEN <= crypto_kdf_BYTES_MAX,
	       "a channel key can be derived");

void pubwire_preamble_write(uint64_t stream_id, uint8_t out[PUBWIRE_PREAMBLE_FRAME_LEN])
{
	uint8_t *b = out + CONTROL_FRAME_HEADER_LEN;

	out[0] = (uint8_t)(PUBWIRE_PREAMBLE_LEN >> 8);
	out[1] = (uint8_t)PUBWIRE_PREAMBLE_LEN;
	for (int i = 0; i < 4; i++)
		b[PREAMBLE_OFF_MAGIC + i] = (uint8_t)((uint32_t)PUBWIRE_MAGIC >> (24 - 8 * i));
	b[PREAMBLE_OFF_VERSION] = PUBWIRE_VERSION;
	for (int i = 0; i < 8; i++)
		b[PREAMBLE_OFF_ID + i] = (uint8_t)(stream_id >> (56 - 8 * i));
}

bool pubwire_preamble_read(const uint8_t *body, size_t len, uint64_t *stream_id)
{
	uint32_t magic = 0;
	uint64_t id = 0;

	if (!body || len != PUBWIRE_PREAMBLE_LEN)
		return false;
	for (int i = 0; i < 4; i++)
		magic = magic << 8 | body[PREAMBLE_OFF_MAGIC + i];
	if (magic != PUBWIRE_MAGIC || body[PREAMBLE_OFF_VERSION] != PUBWIRE_VERSION)
		return false;
	for (int i = 0; i < 8; i++)
		id = id << 8 | body[PREAMBLE_OFF_ID + i];
	*stream_id = id;
	return true;
}

bool pubwire_channel_init(struct control_channel *ch, const uint8_t secret[CONTROL_STREAM_SECRET_LEN],
			  bool node_side)
{
	uint8_t up[NOISE_KEY_LEN], down[NOISE_KEY_LEN];
	bool ok = crypto_kdf_derive_from_key(up, sizeof(up), KDF_ID_NODE_TO_COORD, kdf_context, secret) == 0 &&
		  crypto_kdf_derive_from_key(down, sizeof(down), KDF_ID_COORD_TO_NODE, kdf_context, secret) == 0;

	control_channel_clear(ch);
	if (ok) {
		memcpy(ch->send_key, node_side ? up : down, NOISE_KEY_LEN);
		memcpy(ch->recv_key, node_side ? down : up, NOISE_KEY_LEN);
		ch->established = true;
	}
	sodium_memzero(up, sizeof(up));
	sodium_memzero(down, sizeof(down));
	return ok;
}

bool pubwire_frame_parse(const uint8_t *plain, size_t len, enum pubwire_kind *kind, const uint8_t **payload,
			 size_t *payload_len)
{
	if (!plain || len < PUBWIRE_KIND_LEN)
		return false;
	size_t n = len - PUBWIRE_KIND_LEN;
	switch (plain[0]) {
	case PUBWIRE_ATTACH:
	case PUBWIRE_EOF:
		if (n != 0)
			return false;
		break;
	case PUBWIRE_DATA:
		if (n == 0 || n > PUBWIRE_MAX_DATA)
			return false;
		break;
	default:
		return false;
	}
	*kind = (enum pubwire_kind)plain[0];
	*payload = plain + PUBWIRE_KIND_LEN;
	*payload_len = n;
	return true;
}

bool pubwire_seal(struct control_channel *ch, enum pubwire_kind kind, const uint8_t *payload, size_t payload_len,
		  uint8_t *out, size_t cap, size_t *out_len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];

	if (payload_len > PUBWIRE_MAX_DATA || (kind == PUBWIRE_DATA) != (payload_len > 0))
		return false;
	plain[0] = (uint8_t)kind;
	if (payload_len)
		memcpy(plain + PUBWIRE_KIND_LEN, payload, payload_len);
	bool ok = control_seal(ch, plain, PUBWIRE_KIND_LEN + payload_len, out, cap, out_len);
	sodium_memzero(plain, PUBWIRE_KIND_LEN + payload_len);
	return ok;
}
