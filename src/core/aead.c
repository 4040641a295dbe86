/* Data-message AEAD: libcrypto with a libsodium fallback (aead.h says why). */
#include "core/aead.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#ifdef HAVE_LIBCRYPTO
#include <threads.h>

#include <openssl/evp.h>

#include "core/dynlib.h"
#include "core/log.h"
#endif

_Static_assert(AEAD_KEY_LEN == crypto_aead_chacha20poly1305_ietf_KEYBYTES, "AEAD key size");
_Static_assert(AEAD_NONCE_LEN == crypto_aead_chacha20poly1305_ietf_NPUBBYTES, "AEAD nonce size");
_Static_assert(AEAD_TAG_LEN == crypto_aead_chacha20poly1305_ietf_ABYTES, "AEAD tag size");

#ifdef HAVE_LIBCRYPTO
/* libcrypto is loaded, not linked: mapping it costs ~1.4 MB of RSS (relocated data and the
 * pages touched while loading) before it seals a byte, and a node whose peers are all idle
 * never needs it. The first session's keys load it (~8 ms once, most of it OpenSSL reading its
 * config and registering its default provider); every later session reuses it. The
 * table below is process-wide like the loader's own state, written once (call_once) and
 * read-only afterwards. __typeof__ keeps each pointer's type the header's. */
struct libcrypto_api {
	__typeof__(&EVP_chacha20_poly1305) chacha20_poly1305;
	__typeof__(&EVP_CIPHER_CTX_new) ctx_new;
	__typeof__(&EVP_CIPHER_CTX_free) ctx_free;
	__typeof__(&EVP_CIPHER_CTX_ctrl) ctx_ctrl;
	__typeof__(&EVP_CipherInit_ex) init;
	__typeof__(&EVP_CipherUpdate) update;
	__typeof__(&EVP_CipherFinal_ex) final;
};

static struct libcrypto_api libcrypto;
static bool libcrypto_loaded;
static once_flag libcrypto_once = ONCE_FLAG_INIT;

static void libcrypto_load(void)
{
	struct libcrypto_api api;
	const struct dynlib_symbol symbols[] = {
		DYNLIB_SYMBOL(api.chacha20_poly1305, "EVP_chacha20_poly1305"),
		DYNLIB_SYMBOL(api.ctx_new, "EVP_CIPHER_CTX_new"),
		DYNLIB_SYMBOL(api.ctx_free, "EVP_CIPHER_CTX_free"),
		DYNLIB_SYMBOL(api.ctx_ctrl, "EVP_CIPHER_CTX_ctrl"),
		DYNLIB_SYMBOL(api.init, "EVP_CipherInit_ex"),
		DYNLIB_SYMBOL(api.update, "EVP_CipherUpdate"),
		DYNLIB_SYMBOL(api.final, "EVP_CipherFinal_ex"),
	};
	char err[256];

	if (!dynlib_open(LIBCRYPTO_SONAME, symbols, sizeof(symbols) / sizeof(symbols[0]), err, sizeof(err))) {
		log_warn("%s: data messages are sealed by libsodium, about half the cipher speed; install "
			 "OpenSSL's libcrypto (Debian: libssl3) for the fast path", err);
		return;
	}
	libcrypto = api;
	libcrypto_loaded = true;
	log_debug("loaded %s for data messages", LIBCRYPTO_SONAME);
}

/* The loaded library, or NULL (libsodium then does the work); loads it on the first call. */
static const struct libcrypto_api *libcrypto_get(void)
{
	call_once(&libcrypto_once, libcrypto_load);
	return libcrypto_loaded ? &libcrypto : NULL;
}

/* The type behind the opaque name: libcrypto's context, keyed once per session; each
 * packet only sets its nonce. */
struct aead_cipher {
	const struct libcrypto_api *api;
	EVP_CIPHER_CTX *ctx;
};

struct aead_cipher *aead_cipher_new(const uint8_t key[AEAD_KEY_LEN], bool seal)
{
	const struct libcrypto_api *api = libcrypto_get();
	const EVP_CIPHER *cipher;
	struct aead_cipher *c;

	if (!api || !(cipher = api->chacha20_poly1305()))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->api = api;
	c->ctx = api->ctx_new();
	if (!c->ctx || api->init(c->ctx, cipher, NULL, NULL, NULL, seal ? 1 : 0) != 1 ||
	    api->ctx_ctrl(c->ctx, EVP_CTRL_AEAD_SET_IVLEN, AEAD_NONCE_LEN, NULL) != 1 ||
	    api->init(c->ctx, NULL, NULL, key, NULL, seal ? 1 : 0) != 1) {
		aead_cipher_free(c);
		return NULL;
	}
	return c;
}

void aead_cipher_free(struct aead_cipher *c)
{
	if (!c)
		return;
	if (c->ctx)
		c->api->ctx_free(c->ctx); /* cleanses the key schedule */
	free(c);
}

static bool cipher_seal(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], uint8_t *buf, size_t len)
{
	const struct libcrypto_api *api = c->api;
	int n, fin;
	return len <= INT_MAX && api->init(c->ctx, NULL, NULL, NULL, nonce, 1) == 1 &&
	       api->update(c->ctx, buf, &n, buf, (int)len) == 1 && api->final(c->ctx, buf + n, &fin) == 1 &&
	       (size_t)n + (size_t)fin == len &&
	       api->ctx_ctrl(c->ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, buf + len) == 1;
}

static bool cipher_open(struct aead_cipher *c, const uint8_t nonce[AEAD_NONCE_LEN], const uint8_t *in, size_t len,
			uint8_t *out)
{
	/* The tag is copied first: the API wants a writable buffer, and out may overlap in. */
	const struct libcrypto_api *api = c->api;
	uint8_t tag[AEAD_TAG_LEN];
	int n, fin;
	memcpy(tag, in + len, AEAD_TAG_LEN);
	return len <= INT_MAX && api->init(c->ctx, NULL, NULL, NULL, nonce, 0) == 1 &&
	       api->ctx_ctrl(c->ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, tag) == 1 &&
	       api->update(c->ctx, out, &n, in, (int)len) == 1 && api->final(c->ctx, out + n, &fin) == 1 &&
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
