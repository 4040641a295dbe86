/* The data-message AEAD (core/aead.h): libcrypto's ChaCha20-Poly1305 must produce exactly
 * libsodium's bytes (RFC 8439, no associated data) at every length a data message can have,
 * in place, and both must refuse what the other refuses; the libsodium fallback (no
 * context) must agree with both. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "core/aead.h"

enum {
	MAX_LEN = 1600, /* past the largest padded inner packet (1,420 + padding) */
	SENTINEL = 0xa5,
};

/* RFC 8439 section 2.8.2's key and nonce, with its plaintext and without the AAD (data
 * messages have none): the reference result is libsodium's, itself vector-tested. */
static const uint8_t rfc_key[AEAD_KEY_LEN] = {
	0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
	0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f,
};
static const uint8_t rfc_nonce[AEAD_NONCE_LEN] = { 0x07, 0x00, 0x00, 0x00, 0x40, 0x41,
						   0x42, 0x43, 0x44, 0x45, 0x46, 0x47 };
static const char rfc_plain[] = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
				"the future, sunscreen would be it.";

static void reference_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *plain, size_t len,
			   uint8_t *out)
{
	crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, plain, len, NULL, 0, NULL, nonce, key);
}

static void check_length(struct aead_cipher *seal, struct aead_cipher *open, const uint8_t *key, size_t len)
{
	uint8_t nonce[AEAD_NONCE_LEN] = { 0 };
	uint8_t plain[MAX_LEN], expect[MAX_LEN + AEAD_TAG_LEN], buf[MAX_LEN + AEAD_TAG_LEN + 1],
		opened[MAX_LEN + 1];

	randombytes_buf(plain, len);
	randombytes_buf(nonce + 4, 8);
	reference_seal(key, nonce, plain, len, expect);

	memset(buf, SENTINEL, sizeof(buf));
	memcpy(buf, plain, len);
	assert_true(aead_seal(seal, key, nonce, buf, len));
	assert_memory_equal(buf, expect, len + AEAD_TAG_LEN);
	assert_int_equal(buf[len + AEAD_TAG_LEN], SENTINEL);

	/* Out of place, then in place. */
	memset(opened, SENTINEL, sizeof(opened));
	assert_true(aead_open(open, key, nonce, buf, len + AEAD_TAG_LEN, opened));
	if (len)
		assert_memory_equal(opened, plain, len);
	assert_int_equal(opened[len], SENTINEL);
	assert_true(aead_open(open, key, nonce, buf, len + AEAD_TAG_LEN, buf));
	if (len)
		assert_memory_equal(buf, plain, len);

	/* Any flipped bit, in the ciphertext or the tag, or a different nonce is refused and
	 * leaves nothing readable behind. */
	memcpy(buf, expect, len + AEAD_TAG_LEN);
	size_t at = randombytes_uniform((uint32_t)(len + AEAD_TAG_LEN));
	buf[at] ^= (uint8_t)(1u << randombytes_uniform(8));
	memset(opened, SENTINEL, sizeof(opened));
	assert_false(aead_open(open, key, nonce, buf, len + AEAD_TAG_LEN, opened));
	for (size_t i = 0; i < len; i++)
		assert_true(opened[i] == 0 || opened[i] == SENTINEL);
	buf[at] = expect[at];
	nonce[11] ^= 1;
	assert_false(aead_open(open, key, nonce, buf, len + AEAD_TAG_LEN, opened));
}

/* Built --without-libcrypto, every context is NULL and each check below runs libsodium
 * against itself (still worth it: in place, forgeries, lengths). */
#ifdef HAVE_LIBCRYPTO
#define assert_fast_path(c) assert_non_null(c) /* Debian's libcrypto has ChaCha20-Poly1305 */
#else
#define assert_fast_path(c) assert_null(c)
#endif

static void test_rfc8439_key_and_plaintext(void **state)
{
	(void)state;
	size_t len = strlen(rfc_plain);
	uint8_t expect[sizeof(rfc_plain) + AEAD_TAG_LEN], buf[sizeof(rfc_plain) + AEAD_TAG_LEN];
	struct aead_cipher *seal = aead_cipher_new(rfc_key, true);

	assert_fast_path(seal);
	reference_seal(rfc_key, rfc_nonce, (const uint8_t *)rfc_plain, len, expect);
	memcpy(buf, rfc_plain, len);
	assert_true(aead_seal(seal, rfc_key, rfc_nonce, buf, len));
	assert_memory_equal(buf, expect, len + AEAD_TAG_LEN);
	/* RFC 8439's ciphertext does not depend on the AAD: its first bytes hold here too. */
	static const uint8_t rfc_cipher_start[8] = { 0xd3, 0x1a, 0x8d, 0x34, 0x64, 0x8e, 0x60, 0xdb };
	assert_memory_equal(buf, rfc_cipher_start, sizeof(rfc_cipher_start));
	aead_cipher_free(seal);
}

/* libcrypto both ways, at every length 0..MAX_LEN (block and tag edges included). */
static void test_libcrypto_matches_libsodium_every_length(void **state)
{
	(void)state;
	uint8_t key[AEAD_KEY_LEN];
	randombytes_buf(key, sizeof(key));
	struct aead_cipher *seal = aead_cipher_new(key, true), *open = aead_cipher_new(key, false);
	assert_fast_path(seal);
	assert_fast_path(open);
	for (size_t len = 0; len <= MAX_LEN; len++)
		check_length(seal, open, key, len);
	aead_cipher_free(seal);
	aead_cipher_free(open);
}

/* Mixed: sealed by one implementation, opened by the other, and the fallback alone. */
static void test_fallback_interoperates(void **state)
{
	(void)state;
	uint8_t key[AEAD_KEY_LEN];
	randombytes_buf(key, sizeof(key));
	struct aead_cipher *seal = aead_cipher_new(key, true), *open = aead_cipher_new(key, false);
	static const size_t lens[] = { 0, 1, 15, 16, 17, 63, 64, 65, 1420, MAX_LEN };
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		check_length(NULL, open, key, lens[i]);
		check_length(seal, NULL, key, lens[i]);
		check_length(NULL, NULL, key, lens[i]);
	}
	aead_cipher_free(seal);
	aead_cipher_free(open);
	aead_cipher_free(NULL);
}

/* A context keyed once serves many nonces in a row (the session reuses it per packet), and a
 * context made for one key refuses another key's messages. */
static void test_context_reuse_and_wrong_key(void **state)
{
	(void)state;
	uint8_t key[AEAD_KEY_LEN], other[AEAD_KEY_LEN], buf[64 + AEAD_TAG_LEN], nonce[AEAD_NONCE_LEN] = { 0 };
	randombytes_buf(key, sizeof(key));
	memcpy(other, key, sizeof(other));
	other[0] ^= 1;
	struct aead_cipher *seal = aead_cipher_new(key, true), *wrong = aead_cipher_new(other, false);
	for (int i = 0; i < 1000; i++)
		check_length(seal, NULL, key, (size_t)(i % 200));
	memset(buf, 7, 64);
	assert_true(aead_seal(seal, key, nonce, buf, 64));
	assert_false(aead_open(wrong, other, nonce, buf, sizeof(buf), buf));
	assert_false(aead_open(NULL, other, nonce, buf, sizeof(buf), buf));
	/* Shorter than a tag: refused before any work. */
	assert_false(aead_open(wrong, other, nonce, buf, AEAD_TAG_LEN - 1, buf));
	aead_cipher_free(seal);
	aead_cipher_free(wrong);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8439_key_and_plaintext),
		cmocka_unit_test(test_libcrypto_matches_libsodium_every_length),
		cmocka_unit_test(test_fallback_interoperates),
		cmocka_unit_test(test_context_reuse_and_wrong_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
