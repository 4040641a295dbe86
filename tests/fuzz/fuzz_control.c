/* Fuzz target: everything a stranger's TCP connection reaches on the coordinator, and what a
 * coordinator's decrypted frames reach on a node.
 *
 *   1. the input as one message: control_decode(); a message that decodes must re-encode to
 *      exactly the input (the encoding is unique) and decode again to the same message;
 *   2. the input as a frame's plaintext: control_record_next() walks its records, each goes
 *      through 1, and if every record is a known valid message, appending them again with
 *      control_record_append() gives back exactly the input;
 *   3. the input as a byte stream: control_frame_next() splits it; the first frame goes to
 *      control_server_accept() as a hello, and if that succeeds every later frame is opened
 *      and its records walked as the coordinator would (2);
 *   4. the input as a bare hello body: control_server_accept().
 *
 * Keys and the coordinator's ephemeral are fixed so runs are deterministic and seeds stay
 * meaningful: the coordinator's private key is 32 x 0x01, its ephemeral 32 x 0x02. The
 * seeds in tests/fuzz/corpus/fuzz_control/ (written by gen_control_seeds.c) include a hello
 * from node key 32 x 0x03 followed by frames sealed under the resulting session, so the open
 * path is reached too. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_MAX_INPUT = 4 * (CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME), /* a few full frames */
	FUZZ_COORD_KEY_BYTE = 0x01,
	FUZZ_COORD_EPHEMERAL_BYTE = 0x02,
};

static void check_message(const uint8_t *data, size_t size)
{
	struct control_message m, again;
	uint8_t buf[CONTROL_MAX_FRAME];
	size_t len;

	if (control_decode(data, size, &m) != CONTROL_DECODE_OK)
		return;
	len = control_encode(&m, buf, sizeof(buf));
	if (len != size || memcmp(buf, data, size) != 0)
		abort();
	if (control_decode(buf, len, &again) != CONTROL_DECODE_OK || control_encode(&again, buf, sizeof(buf)) != len ||
	    memcmp(buf, data, size) != 0)
		abort();
}

static void check_records(const uint8_t *data, size_t size)
{
	uint8_t again[CONTROL_MAX_PLAIN];
	size_t off = 0, again_len = 0;
	bool all_known = size <= sizeof(again);
	const uint8_t *msg;
	size_t msg_len;
	int r;

	while ((r = control_record_next(data, size, &off, &msg, &msg_len)) == 1) {
		struct control_message m;

		if (msg_len == 0 || msg < data || msg_len > size || (size_t)(msg - data) > size - msg_len ||
		    off != (size_t)(msg - data) + msg_len || off > size)
			abort();
		check_message(msg, msg_len);
		if (all_known && control_decode(msg, msg_len, &m) == CONTROL_DECODE_OK)
			all_known = control_record_append(again, sizeof(again), &again_len, &m);
		else
			all_known = false;
	}
	if (r == 0 && off != size)
		abort();
	if (r == 0 && all_known && (again_len != size || memcmp(again, data, size) != 0))
		abort();
}

static bool accept_hello(struct control_channel *ch, const uint8_t *body, size_t len)
{
	uint8_t coord_private[WIRE_KEY_LEN], ephemeral[WIRE_KEY_LEN], timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t welcome[CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN];
	size_t welcome_len = 0;
	bool ok;

	memset(coord_private, FUZZ_COORD_KEY_BYTE, sizeof(coord_private));
	memset(ephemeral, FUZZ_COORD_EPHEMERAL_BYTE, sizeof(ephemeral));
	ok = control_server_accept(ch, coord_private, body, len, timestamp, ephemeral, welcome, sizeof(welcome),
				   &welcome_len);
	if (ok != ch->established || (ok && welcome_len != sizeof(welcome)))
		abort();
	return ok;
}

static void check_stream(const uint8_t *data, size_t size)
{
	struct control_channel ch;
	size_t off = 0;
	bool first = true;

	memset(&ch, 0, sizeof(ch));
	while (off < size) {
		const uint8_t *body;
		size_t body_len, consumed;
		int r = control_frame_next(data + off, size - off, &body, &body_len, &consumed);

		if (r != 1)
			break;
		if (body != data + off + CONTROL_FRAME_HEADER_LEN || body_len == 0 || body_len > CONTROL_MAX_FRAME ||
		    consumed != CONTROL_FRAME_HEADER_LEN + body_len || consumed > size - off)
			abort();
		if (first) {
			if (!accept_hello(&ch, body, body_len))
				break;
			first = false;
		} else {
			uint8_t plain[CONTROL_MAX_PLAIN];
			size_t plain_len;

			if (!control_open(&ch, body, body_len, plain, sizeof(plain), &plain_len))
				break; /* the coordinator closes here */
			if (plain_len + NOISE_TAG_LEN != body_len)
				abort();
			check_records(plain, plain_len);
		}
		off += consumed;
	}
	control_channel_clear(&ch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_channel ch;
	uint8_t *copy;

	if (size > FUZZ_MAX_INPUT || sodium_init() < 0)
		return 0;
	/* a private copy of exactly size bytes, so a read past the end is caught by ASan */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);

	check_message(copy, size);
	check_records(copy, size);
	check_stream(copy, size);
	memset(&ch, 0, sizeof(ch));
	accept_hello(&ch, copy, size);
	control_channel_clear(&ch);

	free(copy);
	return 0;
}
