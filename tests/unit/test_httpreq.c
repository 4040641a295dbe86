/* Unit tests for coord/httpreq: a table of requests (what scrapers send, and what must be
 * refused, with the status it gets), every prefix of a good request being incomplete, and
 * the size bound. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "coord/httpreq.h"

static enum httpreq_result parse(const char *text, struct httpreq *req)
{
	return httpreq_parse((const uint8_t *)text, strlen(text), req);
}

static void test_table(void **state)
{
	static const struct {
		const char *text;
		enum httpreq_result want;
		const char *path; /* for HTTPREQ_OK */
		bool head;
	} cases[] = {
		/* What Prometheus and curl send. */
		{ "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.45.0\r\n"
		  "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
		  "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
		  HTTPREQ_OK, "/metrics", false },
		{ "GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n",
		  HTTPREQ_OK, "/metrics", false },
		{ "GET /metrics HTTP/1.0\r\n\r\n", HTTPREQ_OK, "/metrics", false },
		{ "HEAD /metrics HTTP/1.1\r\n\r\n", HTTPREQ_OK, "/metrics", true },
		{ "GET /metrics?name[]=x HTTP/1.1\r\n\r\n", HTTPREQ_OK, "/metrics", false },
		{ "GET / HTTP/1.1\r\n\r\n", HTTPREQ_OK, "/", false },
		{ "GET /metrics HTTP/1.1\n\n", HTTPREQ_OK, "/metrics", false },       /* bare LF */
		{ "\r\nGET /metrics HTTP/1.1\r\n\r\n", HTTPREQ_OK, "/metrics", false }, /* a leading CRLF */
		{ "GET /metrics HTTP/1.1\r\nX-Empty:\r\nTab:\ta\tb\r\n\r\n", HTTPREQ_OK, "/metrics", false },
		/* Refused, and how. */
		{ "POST /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD_METHOD, NULL, false },
		{ "get /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD_METHOD, NULL, false }, /* methods are case-sensitive */
		{ "GET /metrics HTTP/2.0\r\n\r\n", HTTPREQ_BAD_VERSION, NULL, false },
		{ "GET /metrics HTTP/1.2\r\n\r\n", HTTPREQ_BAD_VERSION, NULL, false },
		{ "GET /metrics HTTP/1.1 \r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics http/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics HTTP/11\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics\r\n\r\n", HTTPREQ_BAD, NULL, false },                  /* HTTP/0.9 */
		{ "GET  /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET http://x/metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false }, /* absolute-form */
		{ "OPTIONS * HTTP/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /me\x01trics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics HTTP/1.1\r\n: no name\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "GET /metrics HTTP/1.1\r\nA: b\x7f\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "\n\nGET /metrics HTTP/1.1\r\n\r\n", HTTPREQ_BAD, NULL, false },
		{ "\r\n\r\n", HTTPREQ_BAD, NULL, false },
		/* Not complete yet. */
		{ "", HTTPREQ_INCOMPLETE, NULL, false },
		{ "GET /metrics HTTP/1.1\r\n", HTTPREQ_INCOMPLETE, NULL, false },
		{ "GET /metrics HTTP/1.1\r\nHost: x\r\n\r", HTTPREQ_INCOMPLETE, NULL, false },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct httpreq req;
		enum httpreq_result r = parse(cases[i].text, &req);
		if (r != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i, cases[i].text, (int)r, (int)cases[i].want);
		if (r == HTTPREQ_OK) {
			assert_string_equal(req.path, cases[i].path);
			assert_int_equal(req.method_head, cases[i].head);
		}
	}
}

/* Every proper prefix of a good request waits for more; the whole one is answered. */
static void test_prefixes(void **state)
{
	static const char text[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
	struct httpreq req;

	(void)state;
	for (size_t n = 0; n < sizeof(text) - 1; n++)
		assert_int_equal(httpreq_parse((const uint8_t *)text, n, &req), HTTPREQ_INCOMPLETE);
	assert_int_equal(httpreq_parse((const uint8_t *)text, sizeof(text) - 1, &req), HTTPREQ_OK);
}

/* A header block that does not end within HTTPREQ_MAX bytes is refused, and bytes past the
 * bound are never read (the buffer here ends exactly there). */
static void test_too_large(void **state)
{
	static uint8_t buf[HTTPREQ_MAX];
	static const char start[] = "GET /metrics HTTP/1.1\r\nX: ";
	struct httpreq req;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, start, sizeof(start) - 1);
	assert_int_equal(httpreq_parse(buf, sizeof(buf) - 1, &req), HTTPREQ_INCOMPLETE);
	assert_int_equal(httpreq_parse(buf, sizeof(buf), &req), HTTPREQ_TOO_LARGE);
	/* A long path is refused rather than cut. */
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "GET /", 5);
	memcpy(buf + 5 + HTTPREQ_PATH_MAX, " HTTP/1.1\r\n\r\n", 13);
	assert_int_equal(httpreq_parse(buf, 5 + HTTPREQ_PATH_MAX + 13, &req), HTTPREQ_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_prefixes),
		cmocka_unit_test(test_too_large),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
