/* Fuzz target: meshcoord's HTTP request parser for the metrics page (explicit length, no NUL
 * terminator; the parser must never read past it). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coord/httpreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq req;
	enum httpreq_result r = httpreq_parse(data, size, &req);

	if (r == HTTPREQ_OK) {
		/* An accepted path is an origin-form path, NUL-terminated inside its buffer. */
		if (req.path[0] != '/' || !memchr(req.path, '\0', sizeof(req.path)))
			abort();
		/* No hidden state: the same bytes give the same answer. */
		if (httpreq_parse(data, size, &req) != HTTPREQ_OK)
			abort();
	}
	if (r == HTTPREQ_TOO_LARGE && size < HTTPREQ_MAX)
		abort(); /* only a full buffer is too large */
	return 0;
}
