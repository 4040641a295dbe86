/* Shared by the control protocol tests (test_control_codec.c, test_control_channel.c): hex
 * and byte helpers, and the sample messages both programs encode, seal and compare against,
 * so the golden encodings and the golden sealed frames are pinned to one set of builders. */
#ifndef MESHD_TEST_CONTROL_FIXTURES_H
#define MESHD_TEST_CONTROL_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

#include "core/control.h"

enum {
	TEST_BUF_LEN = CONTROL_MAX_FRAME + 64, /* any frame with room to spare */
	TEST_CANARY = 0xa5,                   /* fills buffers so writes past a limit show */
};

/* Fails the running test unless hex is all hex digits and fits cap bytes. */
void unhex(uint8_t *out, size_t cap, const char *hex, size_t *len);
void seq_bytes(uint8_t *out, size_t len, uint8_t start);
/* Decodes from a heap copy of exactly len bytes, so ASan sees any read past the end. */
enum control_decode_result decode_exact(const uint8_t *buf, size_t len, struct control_message *m);

struct sample {
	const char *name;
	void (*make)(struct control_message *m);
	const char *golden; /* hex of the encoding, or NULL */
};

/* The golden channel frames seal samples 0 ("register") and 1 ("registered"); the table's
 * size is checked against N_SAMPLES where it is defined. */
enum { N_SAMPLES = 23 };
extern const struct sample samples[];

/* Encodes sample i into buf, failing the test if it does not encode; returns its length. */
size_t sample_encode(size_t i, uint8_t *buf, size_t cap);

/* Builders the tests also start from to break one field, or to vary one. Each fills a zeroed
 * message. */
void make_register(struct control_message *m);
void make_publish_for_test(struct control_message *m); /* web tcp/20080, game udp/27015 */
void make_registered(struct control_message *m);
void make_error(struct control_message *m);
void make_peer(struct control_message *m);
void make_endpoints(struct control_message *m);
void make_keepalive(struct control_message *m);
void make_endpoints_max(struct control_message *m);

#endif
