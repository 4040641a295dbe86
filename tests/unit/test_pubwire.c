/* The work connection of a published service (core/pubwire.c) and the stream pump both ends
 * run (core/splice.c): frame 0 and its refusals, the per-stream keys, the frame kinds, and
 * two splices joined back to back over socketpairs as coordinator and node: bytes both ways,
 * clean end of stream, a forged frame, a cut connection, a slow reader's backpressure
 * (bounded buffers, nothing lost) and datagrams. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "core/pubwire.h"
#include "core/splice.h"

enum {
	PUMP_ROUNDS_MAX = 10000, /* bounds every loop that waits for bytes to move */
};

static void test_preamble(void **state)
{
	uint8_t f[PUBWIRE_PREAMBLE_FRAME_LEN];
	uint64_t id = 0;
	(void)state;

	pubwire_preamble_write(0x1122334455667788u, f);
	assert_int_equal(f[0] << 8 | f[1], PUBWIRE_PREAMBLE_LEN);
	assert_true(pubwire_preamble_read(f + CONTROL_FRAME_HEADER_LEN, PUBWIRE_PREAMBLE_LEN, &id));
	assert_true(id == 0x1122334455667788u);
	assert_false(pubwire_preamble_read(f + CONTROL_FRAME_HEADER_LEN, PUBWIRE_PREAMBLE_LEN - 1, &id));
	assert_false(pubwire_preamble_read(NULL, PUBWIRE_PREAMBLE_LEN, &id));
	f[CONTROL_FRAME_HEADER_LEN] ^= 1; /* magic */
	assert_false(pubwire_preamble_read(f + CONTROL_FRAME_HEADER_LEN, PUBWIRE_PREAMBLE_LEN, &id));
	f[CONTROL_FRAME_HEADER_LEN] ^= 1;
	f[CONTROL_FRAME_HEADER_LEN + 4] = PUBWIRE_VERSION + 1;
	assert_false(pubwire_preamble_read(f + CONTROL_FRAME_HEADER_LEN, PUBWIRE_PREAMBLE_LEN, &id));
}

static void test_frames(void **state)
{
	struct control_channel node, coord;
	uint8_t secret[CONTROL_STREAM_SECRET_LEN], frame[PUBWIRE_MAX_SEALED], plain[CONTROL_MAX_PLAIN];
	uint8_t data[PUBWIRE_MAX_DATA + 1];
	size_t len, plain_len, payload_len;
	const uint8_t *payload;
	enum pubwire_kind kind;
	(void)state;

	randombytes_buf(secret, sizeof(secret));
	memset(data, 0x5a, sizeof(data));
	assert_true(pubwire_channel_init(&node, secret, true));
	assert_true(pubwire_channel_init(&coord, secret, false));
	/* node -> coordinator */
	assert_true(pubwire_seal(&node, PUBWIRE_ATTACH, NULL, 0, frame, sizeof(frame), &len));
	assert_true(control_open(&coord, frame + 2, len - 2, plain, sizeof(plain), &plain_len));
	assert_true(pubwire_frame_parse(plain, plain_len, &kind, &payload, &payload_len));
	assert_int_equal(kind, PUBWIRE_ATTACH);
	assert_int_equal(payload_len, 0);
	assert_true(pubwire_seal(&node, PUBWIRE_DATA, data, PUBWIRE_MAX_DATA, frame, sizeof(frame), &len));
	assert_int_equal(len, PUBWIRE_MAX_SEALED);
	assert_true(control_open(&coord, frame + 2, len - 2, plain, sizeof(plain), &plain_len));
	assert_true(pubwire_frame_parse(plain, plain_len, &kind, &payload, &payload_len));
	assert_int_equal(kind, PUBWIRE_DATA);
	assert_int_equal(payload_len, PUBWIRE_MAX_DATA);
	/* the other direction has its own key: the node's frame does not open as the coordinator's */
	assert_true(pubwire_seal(&coord, PUBWIRE_EOF, NULL, 0, frame, sizeof(frame), &len));
	struct control_channel wrong;
	assert_true(pubwire_channel_init(&wrong, secret, false));
	assert_false(control_open(&wrong, frame + 2, len - 2, plain, sizeof(plain), &plain_len));
	assert_true(control_open(&node, frame + 2, len - 2, plain, sizeof(plain), &plain_len));
	/* what a sender may not seal */
	assert_false(pubwire_seal(&node, PUBWIRE_DATA, data, 0, frame, sizeof(frame), &len));
	assert_false(pubwire_seal(&node, PUBWIRE_DATA, data, PUBWIRE_MAX_DATA + 1, frame, sizeof(frame), &len));
	assert_false(pubwire_seal(&node, PUBWIRE_EOF, data, 1, frame, sizeof(frame), &len));
	/* what a receiver refuses */
	uint8_t empty_data[] = { PUBWIRE_DATA }, eof_payload[] = { PUBWIRE_EOF, 0 }, unknown[] = { 9 };
	assert_false(pubwire_frame_parse(empty_data, sizeof(empty_data), &kind, &payload, &payload_len));
	assert_false(pubwire_frame_parse(eof_payload, sizeof(eof_payload), &kind, &payload, &payload_len));
	assert_false(pubwire_frame_parse(unknown, sizeof(unknown), &kind, &payload, &payload_len));
	assert_false(pubwire_frame_parse(plain, 0, &kind, &payload, &payload_len));
	control_channel_clear(&node);
	control_channel_clear(&coord);
	control_channel_clear(&wrong);
}

/* ---------------------------------------------------------------- two splices back to back */

struct rig {
	int client[2];   /* [0] the test's client end, [1] the coordinator splice's plain side */
	int work[2];     /* [0] coordinator's sealed side, [1] node's sealed side */
	int service[2];  /* [0] node splice's plain side, [1] the test's service end */
	struct splice coord, node;
};

static void nonblock(int fd)
{
	assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

static void rig_open(struct rig *r, int type)
{
	uint8_t secret[CONTROL_STREAM_SECRET_LEN], pre[PUBWIRE_PREAMBLE_FRAME_LEN];

	assert_int_equal(socketpair(AF_UNIX, type, 0, r->client), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, r->work), 0);
	assert_int_equal(socketpair(AF_UNIX, type, 0, r->service), 0);
	for (int i = 0; i < 2; i++) {
		nonblock(r->client[i]);
		nonblock(r->work[i]);
		nonblock(r->service[i]);
	}
	randombytes_buf(secret, sizeof(secret));
	enum splice_plain_kind k = type == SOCK_STREAM ? SPLICE_PLAIN_STREAM : SPLICE_PLAIN_DGRAM;
	splice_init(&r->coord, k);
	splice_init(&r->node, k);
	assert_true(pubwire_channel_init(&r->coord.ch, secret, false));
	assert_true(pubwire_channel_init(&r->node.ch, secret, true));
	r->coord.plain_fd = r->client[1];
	r->coord.sealed_fd = r->work[0];
	r->coord.need_attach = true;
	r->node.plain_fd = r->service[0];
	r->node.sealed_fd = r->work[1];
	/* the node's first frame: ATTACH (the preamble is the coordinator's listener's to read) */
	pubwire_preamble_write(1, pre);
	assert_true(splice_queue_sealed(&r->node, PUBWIRE_ATTACH, NULL, 0));
}

static void rig_close(struct rig *r)
{
	splice_free(&r->coord);
	splice_free(&r->node);
	for (int i = 0; i < 2; i++) {
		close(r->client[i]);
		close(r->work[i]);
		close(r->service[i]);
	}
}

static void rig_pump(struct rig *r)
{
	splice_pump(&r->node);
	splice_pump(&r->coord);
	splice_pump(&r->node);
}

/* Writes all of data to fd, pumping between tries; bounded. */
static void put_all(struct rig *r, int fd, const uint8_t *data, size_t len)
{
	size_t off = 0;
	for (int i = 0; off < len && i < PUMP_ROUNDS_MAX; i++) {
		ssize_t n = send(fd, data + off, len - off, MSG_DONTWAIT);
		if (n > 0)
			off += (size_t)n;
		rig_pump(r);
	}
	assert_int_equal(off, len);
}

/* Reads exactly len bytes from fd, pumping between tries; bounded. */
static void get_all(struct rig *r, int fd, uint8_t *out, size_t len)
{
	size_t off = 0;
	for (int i = 0; off < len && i < PUMP_ROUNDS_MAX; i++) {
		rig_pump(r);
		ssize_t n = recv(fd, out + off, len - off, MSG_DONTWAIT);
		if (n > 0)
			off += (size_t)n;
	}
	assert_int_equal(off, len);
}

/* Sends data into in_fd while reading out_fd, as a client and a service would. */
static void transfer(struct rig *r, int in_fd, int out_fd, const uint8_t *data, uint8_t *got, size_t len)
{
	size_t off = 0, got_len = 0;
	for (int i = 0; got_len < len && i < PUMP_ROUNDS_MAX; i++) {
		ssize_t n = off < len ? send(in_fd, data + off, len - off, MSG_DONTWAIT) : 0;
		if (n > 0)
			off += (size_t)n;
		rig_pump(r);
		n = recv(out_fd, got + got_len, len - got_len, MSG_DONTWAIT);
		if (n > 0)
			got_len += (size_t)n;
	}
	assert_int_equal(got_len, len);
}

static void test_splice_both_ways(void **state)
{
	struct rig r;
	enum { BIG = 1024 * 1024 };
	uint8_t *up = malloc(BIG), *down = malloc(BIG), *got = malloc(BIG);
	(void)state;

	assert_non_null(up);
	assert_non_null(down);
	assert_non_null(got);
	randombytes_buf(up, BIG);
	randombytes_buf(down, BIG);
	rig_open(&r, SOCK_STREAM);
	transfer(&r, r.client[0], r.service[1], up, got, BIG);
	assert_true(r.coord.attached);
	assert_memory_equal(got, up, BIG);
	transfer(&r, r.service[1], r.client[0], down, got, BIG);
	assert_memory_equal(got, down, BIG);
	assert_true(r.coord.bytes_up == BIG && r.coord.bytes_down == BIG);
	assert_true(r.node.bytes_up == BIG && r.node.bytes_down == BIG);

	/* the client half-closes: the service sees end of file, answers, closes; both done */
	shutdown(r.client[0], SHUT_WR);
	rig_pump(&r);
	rig_pump(&r);
	assert_int_equal(recv(r.service[1], got, 1, MSG_DONTWAIT), 0);
	assert_int_equal(send(r.service[1], "bye", 3, 0), 3);
	shutdown(r.service[1], SHUT_WR);
	get_all(&r, r.client[0], got, 3);
	assert_memory_equal(got, "bye", 3);
	for (int i = 0; i < 4; i++)
		rig_pump(&r);
	assert_int_equal(recv(r.client[0], got, 1, MSG_DONTWAIT), 0);
	assert_true(splice_done(&r.coord));
	assert_true(splice_done(&r.node));
	assert_false(r.coord.failed || r.node.failed);
	rig_close(&r);
	free(up);
	free(down);
	free(got);
}

/* A client that does not read: the buffers fill to their bound and the service's writes
 * stop (EAGAIN); nothing is lost once the client reads. */
static void test_splice_backpressure(void **state)
{
	struct rig r;
	enum { CHUNK = 4096, MAX_CHUNKS = 4096 };
	uint8_t chunk[CHUNK], got[CHUNK];
	size_t sent = 0;
	(void)state;

	rig_open(&r, SOCK_STREAM);
	put_all(&r, r.client[0], (const uint8_t *)"x", 1); /* attach */
	get_all(&r, r.service[1], got, 1);
	for (int i = 0; i < MAX_CHUNKS; i++) {
		memset(chunk, (int)(sent / CHUNK), sizeof(chunk));
		ssize_t n = send(r.service[1], chunk, sizeof(chunk), MSG_DONTWAIT);
		rig_pump(&r);
		if (n < 0) {
			assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
			break;
		}
		assert_int_equal(n, CHUNK); /* whole chunks until the pipe is full */
		sent += CHUNK;
	}
	assert_true(sent < (size_t)MAX_CHUNKS * CHUNK); /* it did stop */
	assert_true(splice_plain_events(&r.coord) == 0 || (splice_plain_events(&r.coord) & 0x004)); /* only EPOLLOUT */
	for (size_t off = 0; off < sent; off += CHUNK) {
		get_all(&r, r.client[0], got, CHUNK);
		assert_int_equal(got[0], (uint8_t)(off / CHUNK));
		assert_int_equal(got[CHUNK - 1], (uint8_t)(off / CHUNK));
	}
	assert_false(r.coord.failed || r.node.failed);
	rig_close(&r);
}

static void test_splice_forged_and_cut(void **state)
{
	struct rig r;
	uint8_t junk[64];
	(void)state;

	/* a frame under another key: the coordinator's side fails, never delivers it */
	rig_open(&r, SOCK_STREAM);
	rig_pump(&r);
	assert_true(r.coord.attached);
	memset(junk, 0, sizeof(junk));
	junk[1] = 40;
	assert_int_equal(send(r.work[1], junk, 42, 0), 42);
	splice_pump(&r.coord);
	assert_true(r.coord.failed);
	rig_close(&r);

	/* no ATTACH first: refused */
	rig_open(&r, SOCK_STREAM);
	r.node.to_sealed.off = r.node.to_sealed.len = 0; /* drop the queued ATTACH */
	assert_true(splice_queue_sealed(&r.node, PUBWIRE_DATA, (const uint8_t *)"hi", 2));
	rig_pump(&r);
	assert_true(r.coord.failed);
	rig_close(&r);

	/* the work connection closes without EOF: a cut, not an end */
	rig_open(&r, SOCK_STREAM);
	rig_pump(&r);
	close(r.work[1]);
	r.work[1] = -1;
	splice_pump(&r.coord);
	assert_true(r.coord.failed);
	assert_false(splice_done(&r.coord));
	rig_close(&r);
}

static void test_splice_datagrams(void **state)
{
	struct rig r;
	uint8_t buf[2048];
	(void)state;

	rig_open(&r, SOCK_DGRAM);
	for (int i = 0; i < 20; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "datagram %d", i);
		assert_int_equal(send(r.client[0], msg, (size_t)n, 0), n);
		rig_pump(&r);
		assert_int_equal(recv(r.service[1], buf, sizeof(buf), MSG_DONTWAIT), n); /* boundaries kept */
		assert_memory_equal(buf, msg, (size_t)n);
		assert_int_equal(send(r.service[1], buf, (size_t)n, 0), n);
		rig_pump(&r);
		assert_int_equal(recv(r.client[0], buf, sizeof(buf), MSG_DONTWAIT), n);
	}
	assert_false(splice_done(&r.coord)); /* a flow ends by timeout, not EOF */
	rig_close(&r);

	/* the coordinator's external side: datagrams pushed in, handed to a callback */
	struct splice ext;
	splice_init(&ext, SPLICE_PLAIN_EXTERNAL);
	uint8_t big[PUBWIRE_MAX_DATA + 1] = { 0 };
	assert_false(splice_push_datagram(&ext, big, sizeof(big)));
	assert_false(splice_push_datagram(&ext, big, 0));
	assert_int_equal(ext.dgrams_dropped, 2);
	splice_free(&ext);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_preamble),
		cmocka_unit_test(test_frames),
		cmocka_unit_test(test_splice_both_ways),
		cmocka_unit_test(test_splice_backpressure),
		cmocka_unit_test(test_splice_forged_and_cut),
		cmocka_unit_test(test_splice_datagrams),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
