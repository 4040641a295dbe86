/* The one HTTP request meshcoord understands: a GET (or HEAD) of the metrics page, HTTP/1.0
 * or 1.1 (RFC 9112 section 3). Pure and bounded: it takes the bytes read so far and their
 * length, never reads past them, and allocates nothing, so a unit test and a fuzz target
 * drive it without a socket (tests/unit/test_httpreq.c, tests/fuzz/fuzz_httpreq.c). */
#ifndef MESHCOORD_HTTPREQ_H
#define MESHCOORD_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	/* A scraper's request is a request line and a few headers (~200 bytes from Prometheus);
	 * anything longer is not one, and the bound keeps a connection's buffer small. */
	HTTPREQ_MAX = 4096,
	HTTPREQ_PATH_MAX = 256, /* the path kept for the answer; longer ones are refused */
};

enum httpreq_result {
	HTTPREQ_INCOMPLETE,  /* no end of the header block yet: read more */
	HTTPREQ_OK,          /* a complete GET or HEAD: see method_head and path */
	HTTPREQ_BAD,         /* malformed: 400 */
	HTTPREQ_TOO_LARGE,   /* no end of headers within HTTPREQ_MAX bytes: 431 */
	HTTPREQ_BAD_METHOD,  /* well-formed, but not GET or HEAD: 405 */
	HTTPREQ_BAD_VERSION, /* not HTTP/1.0 or HTTP/1.1: 505 */
};

struct httpreq {
	bool method_head;              /* HEAD: answer headers only */
	char path[HTTPREQ_PATH_MAX];   /* the target up to '?' (query ignored), NUL-terminated */
};

/* Parses the len bytes in buf (no NUL needed). A result other than HTTPREQ_INCOMPLETE is
 * final: more bytes cannot change it. */
enum httpreq_result httpreq_parse(const uint8_t *buf, size_t len, struct httpreq *out);

#endif
