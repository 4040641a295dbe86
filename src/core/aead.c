/* Data-message AEAD: libcrypto with a libsodium fallback (aead.h says why). */
#include "core/aead.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#ifdef HAVE_LIBCRYPTO
#include <openssl/evp.h>
#endif

_Static_assert(AEAD_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "AEAD key size");
_Static_assert(AEAD_NONCE_LEN == crypto_aead_chacha20poly1305_ietf_NPUBBYTES, "AEAD nonce size");
_Static_assert(AEAD_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "AEAD tag size");

#ifdef HAVE_LIBCRYPTO
/* The type behind the opaque name: libcrypto's context, keyed once per session; each
 * packet only sets its nonce. */
struct aead_cipher {
	EVP_CIPHER_CTX *ctx;
};

struct aead_cipher *aead_cipher_new(const uint8_t key[AEAD_KEY_LEN], bool seal)
{
	const EVP_CIPHER *cipher = EVP_chacha20_poly1305();
	struct aead_cipher *c;

	if (!cipher)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->ctx = EVP_CIPHER_CTX_new();
	if (!c->ctx || EVP_CipherInit_ex(c->ctx, cipher, NULL, NULL, NULL, seal ? 1 : 0) != 1 ||
	    EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_IVLEN, AEAD_NONCE_LEN, NULL) != 1 ||
	    EVP_CipherInit_ex(c->ctx, NULL, NULL, key, NULL, seal ? 1 : 0) != 1) {
		aead_cipher_free(c);
		return NULL;
	}
	return c;
}

void aead_cipher_free(struct aead_cipher *c)
{
	if (!c)
		return;
	EVP_CIPHER_CTX_free(c->ctx); /* cleanses the key schedule */
	free(c);
}

static bool cipher_seal(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], uint8_t *buf, size_t len)
{
	int n, fin;
	return len <= INT_MAX && EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, 1) == 1 &&
	       EVP_CipherUpdate(c->ctx, buf, &n, buf, (int)len) == 1 && EVP_CipherFinal_ex(c->ctx, buf + n, &fin) == 1 &&
	       (size_t)n + (size_t)fin == len &&
	       EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, buf + len) == 1;
}

static bool cipher_open(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
			uint8_t *out)
{
	/* The tag is copied first: the API wants a writable buffer, and out may overlap in. */
	uint8_t tag[AEAD_TAG_LEN];
	int n, fin;
	memcpy(tag, in + len, AEAD_TAG_LEN);
	return len <= INT_MAX && EVP_CipherInit_ex(c->ctx, NULL, NULL, NULL, nonce, 0) == 1 &&
	       EVP_CIPHER_CTX_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag) == 1 &&
	       EVP_CipherUpdate(c->ctx, out, &n, in, (int)len) == 1 && EVP_CipherFinal_ex(c->ctx, out + n, &fin) == 1 &&
	       (size_t)n + (size_t)fin == len;
}
#else
/* Built --without-libcrypto: no contexts exist, libsodium does every call. */
struct aead_cipher {
	int unused;
};

struct aead_cipher *aead_cipher_new(const uint8_t key[AEAD_KEY_LEN], bool seal)
{
	(void)key;
	(void)seal;
	return NULL;
}

void aead_cipher_free(struct aead_cipher *c)
{
	(void)c;
}

static bool cipher_seal(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], uint8_t *buf, size_t len)
{
	(void)c, (void)nonce, (void)buf, (void)len;
	return false;
}

static bool cipher_open(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
			uint8_t *out)
{
	(void)c, (void)nonce, (void)in, (void)len, (void)out;
	return false;
}
#endif

bool aead_seal(struct aead_cipher *c, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
	       uint8_t *buf, size_t len)
{
	if (c)
		return cipher_seal(c, nonce, buf, len);
	/* In-place sealing is supported by libsodium; it cannot fail for these sizes. */
	crypto_aead_chacha20poly1305_ietf_encrypt(buf, NULL, buf, len, NULL, 0, NULL, nonce, key);
	return true;
}

bool aead_open(struct aead_cipher *c, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
	       const uint8_t *in, size_t in_len, uint8_t *out)
{
	if (in_len < AEAD_TAG_LEN)
		return false;
	size_t len = in_len - AEAD_TAG_LEN;
	if (!c)
		return crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, in_len, NULL, 0, nonce, key) == 0;
	if (cipher_open(c, nonce, in, len, out))
		return true;
	/* Decrypted bytes of a forgery must not be used: wipe them. */
	if (len)
		sodium_memzero(out, len);
	return false;
}
