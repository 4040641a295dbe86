/* Noise IK / IKpsk2 over 25519 / ChaChaPoly / BLAKE2s or BLAKE2b, following the Noise
 * specification (revision 34) section by section. libsodium supplies X25519,
 * ChaCha20-Poly1305-IETF and BLAKE2b, libb2 BLAKE2s; HMAC and HKDF are composed here exactly
 * as section 4.3 defines them, over whichever hash the protocol name picked.
 *
 * Every operation runs on a local copy of the handshake state and stores it back only when
 * the whole message was processed, so a failed write or a forged read leaves *hs as it was.
 */
#include "noise.h"

#include <string.h>

#include <blake2.h>
#include <sodium.h>

enum {
	HMAC_IPAD = 0x36,
	HMAC_OPAD = 0x5c,
	BLAKE2S_HASH_LEN = 32,  /* BLAKE2s-256 */
	BLAKE2S_BLOCK_LEN = 64,
	BLAKE2B_HASH_LEN = 64,  /* BLAKE2b-512 */
	BLAKE2B_BLOCK_LEN = 128,
	HASH_BLOCK_MAX_LEN = BLAKE2B_BLOCK_LEN,
};

_Static_assert(BLAKE2B_HASH_LEN <= crypto_generichash_BYTES_MAX, "BLAKE2b output");
_Static_assert((int)BLAKE2S_HASH_LEN == (int)BLAKE2S_OUTBYTES && (int)BLAKE2S_BLOCK_LEN == (int)BLAKE2S_BLOCKBYTES,
	       "BLAKE2s sizes");
_Static_assert((int)NOISE_HASH_MAX_LEN == (int)BLAKE2B_HASH_LEN, "h and ck hold the larger hash");
_Static_assert(NOISE_DH_LEN == crypto_scalarmult_BYTES, "X25519 sizes");
_Static_assert(NOISE_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "ChaChaPoly key");
_Static_assert(NOISE_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "ChaChaPoly tag");
_Static_assert(NOISE_NONCE_LEN == crypto_aead_chacha20poly1305_ietf_NPUBBYTES, "ChaChaPoly nonce");

/* Stands in for NULL buffers of length zero, which the libraries' prototypes do not promise to take. */
static const uint8_t empty[1];

static size_t hash_len(enum noise_hash hash)
{
	return hash == NOISE_HASH_BLAKE2S ? BLAKE2S_HASH_LEN : BLAKE2B_HASH_LEN;
}

static size_t block_len(enum noise_hash hash)
{
	return hash == NOISE_HASH_BLAKE2S ? BLAKE2S_BLOCK_LEN : BLAKE2B_BLOCK_LEN;
}

/* One streaming HASH of either function. */
struct hash_state {
	enum noise_hash hash;
	union {
		blake2s_state s;
		crypto_generichash_state b;
	} u;
};

static void hash_start(struct hash_state *st, enum noise_hash hash)
{
	st->hash = hash;
	if (hash == NOISE_HASH_BLAKE2S)
		blake2s_init(&st->u.s, BLAKE2S_HASH_LEN);
	else
		crypto_generichash_init(&st->u.b, NULL, 0, BLAKE2B_HASH_LEN);
}

static void hash_add(struct hash_state *st, const uint8_t *data, size_t len)
{
	if (!data)
		data = empty;
	if (st->hash == NOISE_HASH_BLAKE2S)
		blake2s_update(&st->u.s, data, len);
	else
		crypto_generichash_update(&st->u.b, data, len);
}

/* Writes hash_len(st->hash) bytes and wipes the state. */
static void hash_finish(struct hash_state *st, uint8_t *out)
{
	if (st->hash == NOISE_HASH_BLAKE2S)
		blake2s_final(&st->u.s, out, BLAKE2S_HASH_LEN);
	else
		crypto_generichash_final(&st->u.b, out, BLAKE2B_HASH_LEN);
	sodium_memzero(st, sizeof(*st));
}

/* HASH(a || b) */
static void hash2(enum noise_hash hash, uint8_t *out, const uint8_t *a, size_t a_len, const uint8_t *b,
		  size_t b_len)
{
	struct hash_state st;

	hash_start(&st, hash);
	hash_add(&st, a, a_len);
	hash_add(&st, b, b_len);
	hash_finish(&st, out);
}

size_t noise_hash(enum noise_hash hash, const uint8_t *data, size_t len, uint8_t out[NOISE_HASH_MAX_LEN])
{
	hash2(hash, out, data, len, NULL, 0);
	return hash_len(hash);
}

/* HMAC-HASH(key, a || b) per RFC 2104; keys here are HASHLEN long (shorter than a block), so
 * no key pre-hashing. */
static void hmac2(enum noise_hash hash, uint8_t *out, const uint8_t *key, const uint8_t *a, size_t a_len,
		  const uint8_t *b, size_t b_len)
{
	struct hash_state st;
	uint8_t block[HASH_BLOCK_MAX_LEN] = { 0 };
	uint8_t inner[NOISE_HASH_MAX_LEN];
	size_t blen = block_len(hash), i;

	memcpy(block, key, hash_len(hash));
	for (i = 0; i < blen; i++)
		block[i] ^= HMAC_IPAD;
	hash_start(&st, hash);
	hash_add(&st, block, blen);
	hash_add(&st, a, a_len);
	hash_add(&st, b, b_len);
	hash_finish(&st, inner);

	for (i = 0; i < blen; i++)
		block[i] ^= HMAC_IPAD ^ HMAC_OPAD;
	hash_start(&st, hash);
	hash_add(&st, block, blen);
	hash_add(&st, inner, hash_len(hash));
	hash_finish(&st, out);

	sodium_memzero(block, sizeof(block));
	sodium_memzero(inner, sizeof(inner));
}

/* HKDF(chaining_key, input_key_material, num_outputs) of spec section 4.3: out2/out3 may be
 * NULL for fewer outputs. Outputs may alias chaining_key. Each output is HASHLEN bytes. */
static void hkdf(enum noise_hash hash, uint8_t *out1, uint8_t *out2, uint8_t *out3, const uint8_t *chaining_key,
		 const uint8_t *ikm, size_t ikm_len)
{
	static const uint8_t one = 0x01, two = 0x02, three = 0x03;
	size_t len = hash_len(hash);
	uint8_t temp_key[NOISE_HASH_MAX_LEN];
	uint8_t t1[NOISE_HASH_MAX_LEN], t2[NOISE_HASH_MAX_LEN], t3[NOISE_HASH_MAX_LEN];

	hmac2(hash, temp_key, chaining_key, ikm, ikm_len, NULL, 0);
	hmac2(hash, t1, temp_key, &one, 1, NULL, 0);
	hmac2(hash, t2, temp_key, t1, len, &two, 1);
	if (out3)
		hmac2(hash, t3, temp_key, t2, len, &three, 1);

	memcpy(out1, t1, len);
	if (out2)
		memcpy(out2, t2, len);
	if (out3)
		memcpy(out3, t3, len);

	sodium_memzero(temp_key, sizeof(temp_key));
	sodium_memzero(t1, sizeof(t1));
	sodium_memzero(t2, sizeof(t2));
	sodium_memzero(t3, sizeof(t3));
}

static void mix_hash(struct noise_handshake *hs, const uint8_t *data, size_t len)
{
	hash2(hs->hash, hs->h, hs->h, hs->hash_len, data, len);
}

/* Installs the first KEY_LEN bytes of a HASHLEN output as the new k (spec: "truncate"). */
static void set_key(struct noise_handshake *hs, const uint8_t temp_k[NOISE_HASH_MAX_LEN])
{
	memcpy(hs->k, temp_k, NOISE_KEY_LEN);
	hs->n = 0;
	hs->has_key = true;
}

static void mix_key(struct noise_handshake *hs, const uint8_t *ikm, size_t ikm_len)
{
	uint8_t temp_k[NOISE_HASH_MAX_LEN];

	hkdf(hs->hash, hs->ck, temp_k, NULL, hs->ck, ikm, ikm_len);
	set_key(hs, temp_k);
	sodium_memzero(temp_k, sizeof(temp_k));
}

static void mix_key_and_hash(struct noise_handshake *hs, const uint8_t *ikm, size_t ikm_len)
{
	uint8_t temp_h[NOISE_HASH_MAX_LEN], temp_k[NOISE_HASH_MAX_LEN];

	hkdf(hs->hash, hs->ck, temp_h, temp_k, hs->ck, ikm, ikm_len);
	mix_hash(hs, temp_h, hs->hash_len);
	set_key(hs, temp_k);
	sodium_memzero(temp_h, sizeof(temp_h));
	sodium_memzero(temp_k, sizeof(temp_k));
}

/* The hash named by the protocol name's last part ("..._BLAKE2s"); false for any other. */
static bool hash_from_name(const char *name, size_t len, enum noise_hash *out)
{
	static const char blake2s[] = "_BLAKE2s", blake2b[] = "_BLAKE2b";
	size_t suffix_len = sizeof(blake2s) - 1;

	if (len < suffix_len)
		return false;
	if (memcmp(name + len - suffix_len, blake2s, suffix_len) == 0)
		*out = NOISE_HASH_BLAKE2S;
	else if (memcmp(name + len - suffix_len, blake2b, suffix_len) == 0)
		*out = NOISE_HASH_BLAKE2B;
	else
		return false;
	return true;
}

static void nonce_encode(uint8_t nonce[NOISE_NONCE_LEN], uint64_t n)
{
	size_t i;

	memset(nonce, 0, 4);
	for (i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* ENCRYPT(k, n, ad, plaintext); out gets plain_len + TAG_LEN bytes. */
static bool aead_encrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			 const uint8_t *plain, size_t plain_len, uint8_t *out)
{
	uint8_t nonce[NOISE_NONCE_LEN];

	if (n == UINT64_MAX) /* reserved by the spec (section 5.1) */
		return false;
	nonce_encode(nonce, n);
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain ? plain : empty, plain_len,
						  ad ? ad : empty, ad_len, NULL, nonce, key);
	return true;
}

/* DECRYPT(k, n, ad, ciphertext); cipher_len >= TAG_LEN, out gets cipher_len - TAG_LEN bytes. */
static bool aead_decrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			 const uint8_t *cipher, size_t cipher_len, uint8_t *out)
{
	uint8_t nonce[NOISE_NONCE_LEN];
	uint8_t scratch[1];

	if (n == UINT64_MAX || cipher_len < NOISE_TAG_LEN)
		return false;
	nonce_encode(nonce, n);
	return crypto_aead_chacha20poly1305_ietf_decrypt(cipher_len > NOISE_TAG_LEN ? out : scratch, NULL, NULL,
							 cipher, cipher_len, ad ? ad : empty, ad_len,
							 nonce, key) == 0;
}

/* EncryptAndHash(): k is always set where IK encrypts, so an empty k is a logic error here
 * rather than the spec's plaintext pass-through. */
static bool encrypt_and_hash(struct noise_handshake *hs, const uint8_t *plain, size_t len, uint8_t *out)
{
	if (!hs->has_key || !aead_encrypt(hs->k, hs->n, hs->h, hs->hash_len, plain, len, out))
		return false;
	hs->n++;
	mix_hash(hs, out, len + NOISE_TAG_LEN);
	return true;
}

static bool decrypt_and_hash(struct noise_handshake *hs, const uint8_t *cipher, size_t len, uint8_t *out)
{
	if (!hs->has_key || !aead_decrypt(hs->k, hs->n, hs->h, hs->hash_len, cipher, len, out))
		return false;
	hs->n++;
	mix_hash(hs, cipher, len);
	return true;
}

/* DH(); an all-zero result means a low-order point was sent to us and would make the key public. */
static bool dh(uint8_t out[NOISE_DH_LEN], const uint8_t private_key[NOISE_DH_LEN],
	       const uint8_t public_key[NOISE_DH_LEN])
{
	if (crypto_scalarmult(out, private_key, public_key) != 0 || sodium_is_zero(out, NOISE_DH_LEN)) {
		sodium_memzero(out, NOISE_DH_LEN);
		return false;
	}
	return true;
}

static bool mix_dh(struct noise_handshake *hs, const uint8_t private_key[NOISE_DH_LEN],
		   const uint8_t public_key[NOISE_DH_LEN])
{
	uint8_t shared[NOISE_DH_LEN];
	bool ok = dh(shared, private_key, public_key);

	if (ok)
		mix_key(hs, shared, sizeof(shared));
	sodium_memzero(shared, sizeof(shared));
	return ok;
}

static bool keypair_from_private(struct noise_keypair *kp, const uint8_t private_key[NOISE_DH_LEN])
{
	memmove(kp->private_key, private_key, NOISE_DH_LEN);
	return crypto_scalarmult_base(kp->public_key, kp->private_key) == 0 &&
	       !sodium_is_zero(kp->public_key, NOISE_DH_LEN);
}

/* GENERATE_KEYPAIR(), or the injected key of a test vector. */
static bool ephemeral_generate(struct noise_keypair *e, const uint8_t *injected_private)
{
	if (injected_private)
		return keypair_from_private(e, injected_private);
	randombytes_buf(e->private_key, sizeof(e->private_key));
	return keypair_from_private(e, e->private_key);
}

/* The "e" token, sending side; out gets the public key. */
static bool write_e(struct noise_handshake *hs, const uint8_t *ephemeral_private, uint8_t out[NOISE_DH_LEN])
{
	if (!ephemeral_generate(&hs->e, ephemeral_private))
		return false;
	memcpy(out, hs->e.public_key, NOISE_DH_LEN);
	mix_hash(hs, hs->e.public_key, NOISE_DH_LEN);
	if (hs->psk_mode)
		mix_key(hs, hs->e.public_key, NOISE_DH_LEN);
	return true;
}

/* The "e" token, receiving side. */
static void read_e(struct noise_handshake *hs, const uint8_t in[NOISE_DH_LEN])
{
	memcpy(hs->re, in, NOISE_DH_LEN);
	mix_hash(hs, hs->re, NOISE_DH_LEN);
	if (hs->psk_mode)
		mix_key(hs, hs->re, NOISE_DH_LEN);
}

/* The payload length a received message implies, checked against the caller's buffer. */
static bool payload_fits(size_t msg_len, size_t overhead, const uint8_t *payload, size_t payload_cap,
			 size_t *payload_len)
{
	if (msg_len < overhead || msg_len - overhead > payload_cap)
		return false;
	if (msg_len > overhead && !payload)
		return false;
	*payload_len = msg_len - overhead;
	return true;
}

bool noise_handshake_init(struct noise_handshake *hs, const char *protocol_name, size_t protocol_name_len,
			  const uint8_t *prologue, size_t prologue_len, enum noise_role role,
			  const uint8_t static_private[NOISE_DH_LEN], const uint8_t *remote_static,
			  const uint8_t *psk)
{
	struct noise_handshake st;
	bool ok = false;

	if (sodium_init() < 0 || !protocol_name || (prologue_len && !prologue))
		return false;
	if ((role == NOISE_INITIATOR) != (remote_static != NULL))
		return false;

	memset(&st, 0, sizeof(st));
	if (!hash_from_name(protocol_name, protocol_name_len, &st.hash))
		return false;
	st.hash_len = hash_len(st.hash);
	st.role = role;
	st.step = NOISE_STEP_MESSAGE1;

	/* InitializeSymmetric(protocol_name): the name zero-padded to HASHLEN, or its hash */
	if (protocol_name_len <= st.hash_len)
		memcpy(st.h, protocol_name, protocol_name_len);
	else
		hash2(st.hash, st.h, (const uint8_t *)protocol_name, protocol_name_len, NULL, 0);
	memcpy(st.ck, st.h, st.hash_len);
	mix_hash(&st, prologue, prologue_len);

	if (!keypair_from_private(&st.s, static_private))
		goto out;
	if (psk) {
		st.psk_mode = true;
		memcpy(st.psk, psk, sizeof(st.psk));
	}

	/* <- s */
	if (role == NOISE_INITIATOR) {
		memcpy(st.rs, remote_static, sizeof(st.rs));
		mix_hash(&st, st.rs, sizeof(st.rs));
	} else {
		mix_hash(&st, st.s.public_key, sizeof(st.s.public_key));
	}

	*hs = st;
	ok = true;
out:
	sodium_memzero(&st, sizeof(st));
	return ok;
}

void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t psk[NOISE_KEY_LEN])
{
	memmove(hs->psk, psk, sizeof(hs->psk));
}

bool noise_write_message1(struct noise_handshake *hs, const uint8_t *ephemeral_private,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t *out, size_t out_cap, size_t *out_len)
{
	struct noise_handshake st;
	uint8_t *p = out;
	bool ok = false;

	if (hs->role != NOISE_INITIATOR || hs->step != NOISE_STEP_MESSAGE1)
		return false;
	if (out_cap < NOISE_MESSAGE1_OVERHEAD || payload_len > out_cap - NOISE_MESSAGE1_OVERHEAD)
		return false;
	if (payload_len && !payload)
		return false;
	st = *hs;

	/* e */
	if (!write_e(&st, ephemeral_private, p))
		goto out;
	p += NOISE_DH_LEN;
	/* es */
	if (!mix_dh(&st, st.e.private_key, st.rs))
		goto out;
	/* s */
	if (!encrypt_and_hash(&st, st.s.public_key, NOISE_DH_LEN, p))
		goto out;
	p += NOISE_DH_LEN + NOISE_TAG_LEN;
	/* ss */
	if (!mix_dh(&st, st.s.private_key, st.rs))
		goto out;
	/* payload */
	if (!encrypt_and_hash(&st, payload, payload_len, p))
		goto out;

	st.step = NOISE_STEP_MESSAGE2;
	*hs = st;
	*out_len = NOISE_MESSAGE1_OVERHEAD + payload_len;
	ok = true;
out:
	if (!ok)
		sodium_memzero(out, NOISE_MESSAGE1_OVERHEAD + payload_len);
	sodium_memzero(&st, sizeof(st));
	return ok;
}

bool noise_read_message1(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
			 uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
	struct noise_handshake st;
	const uint8_t *p = msg;
	size_t len;
	bool ok = false;

	if (hs->role != NOISE_RESPONDER || hs->step != NOISE_STEP_MESSAGE1)
		return false;
	if (!payload_fits(msg_len, NOISE_MESSAGE1_OVERHEAD, payload, payload_cap, &len))
		return false;
	st = *hs;

	/* e */
	read_e(&st, p);
	p += NOISE_DH_LEN;
	/* es */
	if (!mix_dh(&st, st.s.private_key, st.re))
		goto out;
	/* s */
	if (!decrypt_and_hash(&st, p, NOISE_DH_LEN + NOISE_TAG_LEN, st.rs))
		goto out;
	p += NOISE_DH_LEN + NOISE_TAG_LEN;
	/* ss */
	if (!mix_dh(&st, st.s.private_key, st.rs))
		goto out;
	/* payload */
	if (!decrypt_and_hash(&st, p, len + NOISE_TAG_LEN, payload))
		goto out;

	st.step = NOISE_STEP_MESSAGE2;
	*hs = st;
	*payload_len = len;
	ok = true;
out:
	sodium_memzero(&st, sizeof(st));
	return ok;
}

bool noise_write_message2(struct noise_handshake *hs, const uint8_t *ephemeral_private,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t *out, size_t out_cap, size_t *out_len)
{
	struct noise_handshake st;
	uint8_t *p = out;
	bool ok = false;

	if (hs->role != NOISE_RESPONDER || hs->step != NOISE_STEP_MESSAGE2)
		return false;
	if (out_cap < NOISE_MESSAGE2_OVERHEAD || payload_len > out_cap - NOISE_MESSAGE2_OVERHEAD)
		return false;
	if (payload_len && !payload)
		return false;
	st = *hs;

	/* e */
	if (!write_e(&st, ephemeral_private, p))
		goto out;
	p += NOISE_DH_LEN;
	/* ee */
	if (!mix_dh(&st, st.e.private_key, st.re))
		goto out;
	/* se */
	if (!mix_dh(&st, st.e.private_key, st.rs))
		goto out;
	/* psk */
	if (st.psk_mode)
		mix_key_and_hash(&st, st.psk, sizeof(st.psk));
	/* payload */
	if (!encrypt_and_hash(&st, payload, payload_len, p))
		goto out;

	st.step = NOISE_STEP_DONE;
	*hs = st;
	*out_len = NOISE_MESSAGE2_OVERHEAD + payload_len;
	ok = true;
out:
	if (!ok)
		sodium_memzero(out, NOISE_MESSAGE2_OVERHEAD + payload_len);
	sodium_memzero(&st, sizeof(st));
	return ok;
}

bool noise_read_message2(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
			 uint8_t *payload, size_t payload_cap, size_t *payload_len)
{
	struct noise_handshake st;
	const uint8_t *p = msg;
	size_t len;
	bool ok = false;

	if (hs->role != NOISE_INITIATOR || hs->step != NOISE_STEP_MESSAGE2)
		return false;
	if (!payload_fits(msg_len, NOISE_MESSAGE2_OVERHEAD, payload, payload_cap, &len))
		return false;
	st = *hs;

	/* e */
	read_e(&st, p);
	p += NOISE_DH_LEN;
	/* ee */
	if (!mix_dh(&st, st.e.private_key, st.re))
		goto out;
	/* se */
	if (!mix_dh(&st, st.s.private_key, st.re))
		goto out;
	/* psk */
	if (st.psk_mode)
		mix_key_and_hash(&st, st.psk, sizeof(st.psk));
	/* payload */
	if (!decrypt_and_hash(&st, p, len + NOISE_TAG_LEN, payload))
		goto out;

	st.step = NOISE_STEP_DONE;
	*hs = st;
	*payload_len = len;
	ok = true;
out:
	sodium_memzero(&st, sizeof(st));
	return ok;
}

size_t noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASH_MAX_LEN])
{
	memcpy(out, hs->h, hs->hash_len);
	return hs->hash_len;
}

bool noise_split(const struct noise_handshake *hs, uint8_t k1[NOISE_KEY_LEN], uint8_t k2[NOISE_KEY_LEN])
{
	uint8_t temp_k1[NOISE_HASH_MAX_LEN], temp_k2[NOISE_HASH_MAX_LEN];

	if (hs->step != NOISE_STEP_DONE)
		return false;
	hkdf(hs->hash, temp_k1, temp_k2, NULL, hs->ck, NULL, 0);
	memcpy(k1, temp_k1, NOISE_KEY_LEN);
	memcpy(k2, temp_k2, NOISE_KEY_LEN);
	sodium_memzero(temp_k1, sizeof(temp_k1));
	sodium_memzero(temp_k2, sizeof(temp_k2));
	return true;
}

bool noise_transport_encrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			     const uint8_t *plain, size_t plain_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	if (out_cap < NOISE_TAG_LEN || plain_len > out_cap - NOISE_TAG_LEN)
		return false;
	if ((plain_len && !plain) || (ad_len && !ad))
		return false;
	if (!aead_encrypt(key, n, ad, ad_len, plain, plain_len, out))
		return false;
	*out_len = plain_len + NOISE_TAG_LEN;
	return true;
}

bool noise_transport_decrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			     const uint8_t *cipher, size_t cipher_len, uint8_t *out, size_t out_cap, size_t *out_len)
{
	if (cipher_len < NOISE_TAG_LEN || cipher_len - NOISE_TAG_LEN > out_cap)
		return false;
	if ((cipher_len > NOISE_TAG_LEN && !out) || (ad_len && !ad))
		return false;
	if (!aead_decrypt(key, n, ad, ad_len, cipher, cipher_len, out))
		return false;
	*out_len = cipher_len - NOISE_TAG_LEN;
	return true;
}

void noise_handshake_clear(struct noise_handshake *hs)
{
	sodium_memzero(hs, sizeof(*hs));
}
