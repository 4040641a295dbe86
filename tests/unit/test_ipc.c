/* Unit tests for core/ipc: requests and response headers round-trip byte for byte, every
 * prefix of a message is incomplete, a message of another version is recognised from its
 * first six bytes, malformed fields are refused, and the body writer escapes and bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/ipc.h"

static void test_request_round_trip(void **state)
{
	(void)state;
	static const uint8_t want[] = { 'M', 'S', 'H', 'Q', 0, 1, 0, 2, 0, 1, 0, 10, '1', '0', '0', '.', '6',
					'4', '.', '0', '.', '2' };
	uint8_t buf[IPC_REQUEST_MAX];
	size_t n = ipc_request_encode(IPC_CMD_PING, IPC_FLAG_JSON, "100.64.0.2", buf, sizeof(buf));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	struct ipc_request req;
	size_t consumed;
	assert_int_equal(ipc_request_decode(buf, n, &req, &consumed), IPC_DECODE_OK);
	assert_int_equal(consumed, n);
	assert_int_equal(req.version, IPC_VERSION);
	assert_int_equal(req.command, IPC_CMD_PING);
	assert_int_equal(req.flags, IPC_FLAG_JSON);
	assert_string_equal(req.arg, "100.64.0.2");
	assert_int_equal(req.arg_len, 10);

	/* Without an argument; bytes after the message are not part of it. */
	n = ipc_request_encode(IPC_CMD_STATUS, 0, NULL, buf, sizeof(buf));
	assert_int_equal(n, IPC_REQUEST_HEADER_LEN);
	buf[n] = 'x';
	assert_int_equal(ipc_request_decode(buf, n + 1, &req, &consumed), IPC_DECODE_OK);
	assert_int_equal(consumed, n);
	assert_int_equal(req.arg_len, 0);
	assert_string_equal(req.arg, "");
}

static void test_request_prefixes_incomplete(void **state)
{
	(void)state;
	uint8_t buf[IPC_REQUEST_MAX];
	size_t n = ipc_request_encode(IPC_CMD_PING, 0, "peer2", buf, sizeof(buf));
	struct ipc_request req;
	size_t consumed;
	for (size_t cut = 0; cut < n; cut++) {
		assert_int_equal(ipc_request_decode(buf, cut, &req, &consumed), IPC_DECODE_INCOMPLETE);
		assert_int_equal(consumed, 0);
	}
}

static void test_request_refused(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		const char *bytes;
		size_t len;
		enum ipc_decode want;
	} cases[] = {
#define C(name, lit, want) { name, lit, sizeof(lit) - 1, want }
		C("not ours", "GET / HTTP/1.0\r\n", IPC_DECODE_BAD_MAGIC),
		C("wrong first byte", "X", IPC_DECODE_BAD_MAGIC),
		C("response magic", "MSHR\0\1\0\1\0\0\0\0", IPC_DECODE_BAD_MAGIC),
		C("newer version", "MSHQ\0\2", IPC_DECODE_VERSION),
		C("version 0", "MSHQ\0\0\0\1\0\0\0\0", IPC_DECODE_VERSION),
		C("argument too long", "MSHQ\0\1\0\2\0\0\0\x81", IPC_DECODE_MALFORMED),
		C("unknown flag", "MSHQ\0\1\0\1\0\2\0\0", IPC_DECODE_MALFORMED),
		C("space in argument", "MSHQ\0\1\0\2\0\0\0\3a b", IPC_DECODE_MALFORMED),
		C("NUL in argument", "MSHQ\0\1\0\2\0\0\0\3a\0b", IPC_DECODE_MALFORMED),
		C("control char", "MSHQ\0\1\0\2\0\0\0\1\x1b", IPC_DECODE_MALFORMED),
		C("high byte", "MSHQ\0\1\0\2\0\0\0\1\xc3", IPC_DECODE_MALFORMED),
#undef C
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ipc_request req;
		size_t consumed = 99;
		enum ipc_decode got = ipc_request_decode((const uint8_t *)cases[i].bytes, cases[i].len, &req, &consumed);
		if (got != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
		assert_int_equal(consumed, 0);
	}
	/* The version of a CLI we do not understand is still read, to name it in the answer. */
	struct ipc_request req;
	size_t consumed;
	assert_int_equal(ipc_request_decode((const uint8_t *)"MSHQ\x01\x02", 6, &req, &consumed), IPC_DECODE_VERSION);
	assert_int_equal(req.version, 0x0102);
}

static void test_request_encode_refuses(void **state)
{
	(void)state;
	uint8_t buf[IPC_REQUEST_MAX];
	char long_arg[IPC_ARG_MAX + 2];
	memset(long_arg, 'a', sizeof(long_arg) - 1);
	long_arg[sizeof(long_arg) - 1] = '\0';
	assert_int_equal(ipc_request_encode(IPC_CMD_PING, 0, long_arg, buf, sizeof(buf)), 0);
	long_arg[IPC_ARG_MAX] = '\0'; /* exactly the maximum fits */
	assert_int_equal(ipc_request_encode(IPC_CMD_PING, 0, long_arg, buf, sizeof(buf)), IPC_REQUEST_MAX);
	assert_int_equal(ipc_request_encode(IPC_CMD_PING, 0, "a b", buf, sizeof(buf)), 0);
	assert_int_equal(ipc_request_encode(IPC_CMD_PING, 0, "peer", buf, IPC_REQUEST_HEADER_LEN + 3), 0);
}

static void test_response_header(void **state)
{
	(void)state;
	uint8_t buf[IPC_RESPONSE_HEADER_LEN];
	ipc_response_header_encode(IPC_STATUS_ERROR, 0x010203, buf);
	static const uint8_t want[] = { 'M', 'S', 'H', 'R', 0, 1, 0, 2, 0, 1, 2, 3 };
	assert_memory_equal(buf, want, sizeof(want));

	struct ipc_response_header h;
	assert_int_equal(ipc_response_header_decode(buf, sizeof(buf), &h), IPC_DECODE_OK);
	assert_int_equal(h.version, IPC_VERSION);
	assert_int_equal(h.status, IPC_STATUS_ERROR);
	assert_int_equal(h.body_len, 0x010203);
	for (size_t cut = 0; cut < sizeof(buf); cut++)
		assert_int_equal(ipc_response_header_decode(buf, cut, &h), IPC_DECODE_INCOMPLETE);

	/* A daemon of another version: recognised from the prefix alone. */
	static const uint8_t other[] = { 'M', 'S', 'H', 'R', 0, 7 };
	assert_int_equal(ipc_response_header_decode(other, sizeof(other), &h), IPC_DECODE_VERSION);
	assert_int_equal(h.version, 7);

	static const uint8_t huge[] = { 'M', 'S', 'H', 'R', 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff };
	assert_int_equal(ipc_response_header_decode(huge, sizeof(huge), &h), IPC_DECODE_MALFORMED);
	static const uint8_t bad_status[] = { 'M', 'S', 'H', 'R', 0, 1, 0, 9, 0, 0, 0, 0 };
	assert_int_equal(ipc_response_header_decode(bad_status, sizeof(bad_status), &h), IPC_DECODE_MALFORMED);
	static const uint8_t request[] = { 'M', 'S', 'H', 'Q', 0, 1, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(ipc_response_header_decode(request, sizeof(request), &h), IPC_DECODE_BAD_MAGIC);
}

static void test_text(void **state)
{
	(void)state;
	struct ipc_text t;
	ipc_text_init(&t);
	ipc_text_printf(&t, "{\"name\": ");
	ipc_text_json_string(&t, "a\"b\\c\n\x01\x7f\xc3\xa9", 10);
	ipc_text_printf(&t, ", \"n\": %d}", 42);
	assert_false(t.failed);
	assert_string_equal(t.buf, "{\"name\": \"a\\\"b\\\\c\\u000a\\u0001???\", \"n\": 42}");
	assert_int_equal(t.len, strlen(t.buf));

	/* Growth past the initial buffer keeps everything. */
	for (int i = 0; i < 2000; i++)
		ipc_text_printf(&t, "%04d", i);
	assert_false(t.failed);
	assert_memory_equal(t.buf + t.len - 8, "19981999", 8);
	ipc_text_free(&t);
	assert_null(t.buf);
}

static void test_text_bounded(void **state)
{
	(void)state;
	struct ipc_text t;
	ipc_text_init(&t);
	static char chunk[1 << 16];
	memset(chunk, 'x', sizeof(chunk) - 1);
	for (size_t i = 0; i < IPC_BODY_MAX / (sizeof(chunk) - 1) + 2 && !t.failed; i++)
		ipc_text_printf(&t, "%s", chunk);
	assert_true(t.failed);
	assert_true(t.len <= IPC_BODY_MAX);
	size_t len = t.len;
	ipc_text_printf(&t, "y"); /* failed stays failed: nothing more is added */
	assert_int_equal(t.len, len);
	ipc_text_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_request_prefixes_incomplete),
		cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_request_encode_refuses),
		cmocka_unit_test(test_response_header),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_text_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
