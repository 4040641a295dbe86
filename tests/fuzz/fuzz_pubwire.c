/* Fuzz target: what a work connection (core/pubwire.h) carries into the coordinator, and what
 * the coordinator's frames carry into a node.
 *
 *   1. the input as frame 0's body: pubwire_preamble_read();
 *   2. the input as an opened frame's plaintext: pubwire_frame_parse(); a frame that parses
 *      seals and opens again to the same kind and payload;
 *   3. the input as the byte stream after frame 0, fed to a coordinator-side splice (ATTACH
 *      required first) and to a node-side one, both keyed from the fixed secret 32 x 0x07, and
 *      pumped with no descriptors (every frame is opened, nothing is written anywhere).
 *
 * Seeds in tests/fuzz/corpus/fuzz_pubwire/ (written by gen_pubwire_seeds.c) hold an ATTACH,
 * DATA and EOF sealed under that secret, so the open path is reached. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pubwire.h"
#include "core/splice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_SECRET_BYTE = 0x07,
	FUZZ_MAX_INPUT = SPLICE_BUF_CAP, /* what a splice's receive buffer holds */
};

static void check_frame(const uint8_t *data, size_t size)
{
	enum pubwire_kind kind;
	const uint8_t *payload;
	size_t payload_len, sealed_len, plain_len;
	uint8_t secret[CONTROL_STREAM_SECRET_LEN], sealed[PUBWIRE_MAX_SEALED], plain[CONTROL_MAX_PLAIN];
	struct control_channel a, b;

	if (!pubwire_frame_parse(data, size, &kind, &payload, &payload_len))
		return;
	memset(secret, FUZZ_SECRET_BYTE, sizeof(secret));
	if (!pubwire_channel_init(&a, secret, true) || !pubwire_channel_init(&b, secret, false) ||
	    !pubwire_seal(&a, kind, payload, payload_len, sealed, sizeof(sealed), &sealed_len) ||
	    !control_open(&b, sealed + CONTROL_FRAME_HEADER_LEN, sealed_len - CONTROL_FRAME_HEADER_LEN, plain,
			  sizeof(plain), &plain_len) ||
	    plain_len != size || memcmp(plain, data, size) != 0)
		abort();
}

static void check_stream(const uint8_t *data, size_t size, bool coordinator)
{
	uint8_t secret[CONTROL_STREAM_SECRET_LEN];
	struct splice sp;

	memset(secret, FUZZ_SECRET_BYTE, sizeof(secret));
	splice_init(&sp, SPLICE_PLAIN_STREAM);
	sp.need_attach = coordinator;
	/* the node's frames are sealed with the node's key: the coordinator opens them */
	if (!pubwire_channel_init(&sp.ch, secret, !coordinator) || !splice_feed_sealed(&sp, data, size))
		abort();
	splice_pump(&sp);
	if (sp.bytes_down > size)
		abort(); /* never more out than in */
	splice_free(&sp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t id;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	if (sodium_init() < 0)
		abort();
	(void)pubwire_preamble_read(data, size, &id);
	check_frame(data, size);
	check_stream(data, size, true);
	check_stream(data, size, false);
	return 0;
}
