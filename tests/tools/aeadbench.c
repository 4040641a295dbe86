/* aeadbench: the data-message cipher's speed through each implementation of core/aead.h
 * (libcrypto and the libsodium fallback), in one run, as a ratio: the reason meshd seals
 * with libcrypto. Seals and opens --packets messages of --len bytes in place, like a data
 * message, with a fresh nonce each.
 *
 * Usage: aeadbench [--len BYTES] [--packets N]
 * Prints one line: len=.. packets=.. libcrypto_seal_gbps=.. libsodium_seal_gbps=..
 *   libcrypto_open_gbps=.. libsodium_open_gbps=.. seal_ratio=.. open_ratio=.. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/aead.h"
#include "core/clock.h"

enum {
	DEFAULT_LEN = 1424,         /* a 1,420-byte inner packet padded to 16 */
	DEFAULT_PACKETS = 200000,   /* ~0.3 GB: a few tenths of a second per figure */
	MAX_LEN = 65536,
};

struct figure {
	double seal_gbps, open_gbps;
};

static bool measure(bool use_libcrypto, size_t len, unsigned long packets, struct figure *f)
{
	uint8_t key[AEAD_KEY_LEN], nonce[AEAD_NONCE_LEN] = { 0 };
	uint8_t *buf = malloc(len + AEAD_TAG_LEN);
	struct aead_cipher *seal = NULL, *open = NULL;
	bool ok = buf != NULL;

	randombytes_buf(key, sizeof(key));
	if (ok && use_libcrypto) {
		seal = aead_cipher_new(key, true);
		open = aead_cipher_new(key, false);
		ok = seal && open;
	}
	if (ok) {
		memset(buf, 0x5a, len);
		uint64_t t0 = clock_monotonic_us();
		for (unsigned long i = 0; i < packets && ok; i++) {
			memcpy(nonce + 4, &i, sizeof(i));
			ok = aead_seal(seal, key, nonce, buf, len);
		}
		uint64_t t1 = clock_monotonic_us();
		/* Opening needs authentic input: the same message each time (its nonce is fixed). */
		for (unsigned long i = 0; i < packets && ok; i++) {
			ok = aead_open(open, key, nonce, buf, len + AEAD_TAG_LEN, buf) &&
			     aead_seal(seal, key, nonce, buf, len);
		}
		uint64_t t2 = clock_monotonic_us();
		double bytes = (double)len * (double)packets;
		f->seal_gbps = bytes / (double)(t1 - t0 + 1) / 1e3;
		/* The open loop also sealed: subtract the sealing time measured above. */
		double open_us = (double)(t2 - t1) - (double)(t1 - t0);
		f->open_gbps = open_us > 0 ? bytes / open_us / 1e3 : 0;
	}
	aead_cipher_free(seal);
	aead_cipher_free(open);
	free(buf);
	return ok;
}

int main(int argc, char **argv)
{
	size_t len = DEFAULT_LEN;
	unsigned long packets = DEFAULT_PACKETS;
	struct figure fast, fallback;

	for (int i = 1; i < argc; i++) {
		char *end;
		if (i + 1 < argc && strcmp(argv[i], "--len") == 0) {
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end || v == 0 || v > MAX_LEN)
				goto usage;
			len = v;
		} else if (i + 1 < argc && strcmp(argv[i], "--packets") == 0) {
			packets = strtoul(argv[++i], &end, 10);
			if (*end || packets == 0 || packets > 100000000ul)
				goto usage;
		} else {
			goto usage;
		}
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "aeadbench: libsodium failed to initialise\n");
		return 1;
	}
	if (!measure(true, len, packets, &fast)) {
		fprintf(stderr, "aeadbench: libcrypto has no ChaCha20-Poly1305 context here (meshd uses libsodium)\n");
		return 1;
	}
	if (!measure(false, len, packets, &fallback))
		return 1;
	printf("len=%zu packets=%lu libcrypto_seal_gbps=%.2f libsodium_seal_gbps=%.2f libcrypto_open_gbps=%.2f "
	       "libsodium_open_gbps=%.2f seal_ratio=%.2f open_ratio=%.2f\n",
	       len, packets, fast.seal_gbps, fallback.seal_gbps, fast.open_gbps, fallback.open_gbps,
	       fast.seal_gbps / fallback.seal_gbps, fallback.open_gbps > 0 ? fast.open_gbps / fallback.open_gbps : 0);
	return 0;
usage:
	fprintf(stderr, "usage: aeadbench [--len 1..%d] [--packets N]\n", MAX_LEN);
	return 2;
}
