/* Fuzz target: a disco message as a node receives it from anyone on UDP (or through the relay).
 *
 * disco_sender() checks the header and length bounds; a message claiming the fixed peer's key
 * is opened with the shared key of the two fixed test nodes, the others with the wrong key
 * (which must always fail). A message that opens must seal again (a new nonce) to a message
 * of the same length that opens back to exactly the same thing: the parser's strictness and
 * the encoder agree on one encoding.
 *
 * Keys are fixed so seeds stay meaningful: the receiver's private key is 32 x 0x0b, the
 * sender's 32 x 0x0a (its public key is what the seeds carry). The seeds in
 * tests/fuzz/corpus/fuzz_disco/ are written by gen_disco_relay_seeds.c. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/disco.h"
#include "core/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_DISCO_SENDER_BYTE = 0x0a,
	FUZZ_DISCO_RECEIVER_BYTE = 0x0b,
	FUZZ_DISCO_OTHER_BYTE = 0x0c,
};

static uint8_t sender_public[WIRE_KEY_LEN], receiver_public[WIRE_KEY_LEN];
static uint8_t shared[crypto_box_BEFORENMBYTES], wrong[crypto_box_BEFORENMBYTES];

static bool setup(void)
{
	static bool done;
	uint8_t sender[WIRE_KEY_LEN], receiver[WIRE_KEY_LEN], other_public[WIRE_KEY_LEN], other[WIRE_KEY_LEN];

	if (done)
		return true;
	if (sodium_init() < 0)
		return false;
	memset(sender, FUZZ_DISCO_SENDER_BYTE, sizeof(sender));
	memset(receiver, FUZZ_DISCO_RECEIVER_BYTE, sizeof(receiver));
	memset(other, FUZZ_DISCO_OTHER_BYTE, sizeof(other));
	if (!key_public_from_private(sender_public, sender) || !key_public_from_private(receiver_public, receiver) ||
	    !key_public_from_private(other_public, other) || !disco_shared_key(shared, receiver, sender_public) ||
	    !disco_shared_key(wrong, receiver, other_public))
		abort();
	done = true;
	return true;
}

static void check_reseal(const struct disco_message *m, size_t len)
{
	uint8_t buf[DISCO_MAX_LEN];
	struct disco_message again;
	size_t n;

	/* the receiver answering with the same message: sealed from its side of the same key */
	n = disco_seal(m, receiver_public, shared, buf, sizeof(buf));
	if (n != len || disco_sender(buf, n) != buf + DISCO_OFF_SENDER)
		abort();
	if (!disco_open(buf, n, shared, &again) || memcmp(&again, m, sizeof(again)) != 0)
		abort();
	/* a cap one short is refused */
	if (disco_seal(m, receiver_public, shared, buf, n - 1) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct disco_message m;
	const uint8_t *sender;
	uint8_t *copy;

	if (size > 2 * DISCO_MAX_LEN || !setup())
		return 0;
	/* a private copy of exactly size bytes, so a read past the end is caught by ASan */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	sender = disco_sender(copy, size);
	if (sender) {
		if (sender != copy + DISCO_OFF_SENDER || size < DISCO_MIN_LEN || size > DISCO_MAX_LEN)
			abort();
		if (disco_open(copy, size, wrong, &m)) /* forging a box is not the fuzzer's to find */
			abort();
		if (memcmp(sender, sender_public, WIRE_KEY_LEN) == 0) {
			if (disco_open(copy, size, shared, &m))
				check_reseal(&m, size);
		}
	} else {
		/* not a disco message: nothing opens it */
		if (disco_open(copy, size, shared, &m))
			abort();
	}
	free(copy);
	return 0;
}
