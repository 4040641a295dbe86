/* HTTP/1.x request parsing for the metrics page (httpreq.h). Strict where it costs nothing
 * (the request line), lenient where scrapers differ (header names and values are only
 * checked for bytes that could not be there). */
#include "coord/httpreq.h"

#include <string.h>

/* RFC 9110 section 5.6.2: tchar, the bytes of a method or a header name. */
static bool is_tchar(uint8_t c)
{
	if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* The end of the header block: the index just past the empty line, or 0 if not there yet.
 * A bare LF is accepted as a line end (RFC 9112 section 2.2 allows it). */
static size_t header_end(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (i + 1 < len && buf[i + 1] == '\n')
			return i + 2;
		if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* Line [start, end) without its line end; *next is where the following line starts. */
static bool next_line(const uint8_t *buf, size_t start, size_t limit, size_t *end, size_t *next)
{
	for (size_t i = start; i < limit; i++) {
		if (buf[i] == '\n') {
			*end = i > start && buf[i - 1] == '\r' ? i - 1 : i;
			*next = i + 1;
			return true;
		}
	}
	return false;
}

static enum httpreq_result parse_request_line(const uint8_t *l, size_t n, struct httpreq *out)
{
	size_t i = 0, m, t0, t1;

	while (i < n && is_tchar(l[i]))
		i++;
	m = i;
	if (m == 0 || i >= n || l[i] != ' ')
		return HTTPREQ_BAD;
	t0 = ++i;
	while (i < n && l[i] > 0x20 && l[i] < 0x7f)
		i++;
	t1 = i;
	if (t1 == t0 || i >= n || l[i] != ' ')
		return HTTPREQ_BAD;
	i++;
	/* "HTTP/" DIGIT "." DIGIT, and nothing after it. */
	static const char proto[] = "HTTP/";
	const size_t plen = sizeof(proto) - 1;
	if (n - i != plen + 3 || memcmp(l + i, proto, plen) != 0 || l[i + plen + 1] != '.' ||
	    l[i + plen] < '0' || l[i + plen] > '9' || l[i + plen + 2] < '0' || l[i + plen + 2] > '9')
		return HTTPREQ_BAD;
	if (l[i + plen] != '1' || (l[i + plen + 2] != '0' && l[i + plen + 2] != '1'))
		return HTTPREQ_BAD_VERSION;
	/* origin-form only: a proxy's absolute-form or OPTIONS' '*' are not for us */
	if (l[t0] != '/')
		return HTTPREQ_BAD;
	size_t plen_path = t1 - t0;
	const uint8_t *q = memchr(l + t0, '?', plen_path);
	if (q)
		plen_path = (size_t)(q - (l + t0));
	if (plen_path >= sizeof(out->path))
		return HTTPREQ_BAD;
	if (m == 3 && memcmp(l, "GET", 3) == 0)
		out->method_head = false;
	else if (m == 4 && memcmp(l, "HEAD", 4) == 0)
		out->method_head = true;
	else
		return HTTPREQ_BAD_METHOD;
	memcpy(out->path, l + t0, plen_path);
	out->path[plen_path] = '\0';
	return HTTPREQ_OK;
}

/* "name: value": a token, a colon, then visible bytes, spaces and tabs (obs-fold, a line
 * starting with white space, is refused as RFC 9112 section 5.2 allows). */
static bool header_line_ok(const uint8_t *l, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar(l[i]))
		i++;
	if (i == 0 || i >= n || l[i] != ':')
		return false;
	for (i++; i < n; i++)
		if ((l[i] < 0x20 && l[i] != '\t') || l[i] == 0x7f)
			return false;
	return true;
}

enum httpreq_result httpreq_parse(const uint8_t *buf, size_t len, struct httpreq *out)
{
	size_t end, line_end, next, pos = 0;

	memset(out, 0, sizeof(*out));
	if (len > HTTPREQ_MAX)
		len = HTTPREQ_MAX; /* what lies beyond the bound is never looked at */
	end = header_end(buf, len);
	if (end == 0)
		return len >= HTTPREQ_MAX ? HTTPREQ_TOO_LARGE : HTTPREQ_INCOMPLETE;
	/* RFC 9112 section 2.2: ignore at least one empty line before the request line. */
	if (buf[0] == '\n')
		pos = 1;
	else if (len >= 2 && buf[0] == '\r' && buf[1] == '\n')
		pos = 2;
	if (!next_line(buf, pos, end, &line_end, &next) || line_end == pos)
		return HTTPREQ_BAD;
	enum httpreq_result r = parse_request_line(buf + pos, line_end - pos, out);
	if (r != HTTPREQ_OK)
		return r;
	pos = next;
	while (next_line(buf, pos, end, &line_end, &next) && line_end > pos) {
		if (!header_line_ok(buf + pos, line_end - pos))
			return HTTPREQ_BAD;
		pos = next;
	}
	return HTTPREQ_OK;
}
