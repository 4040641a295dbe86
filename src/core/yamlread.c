/* Strict YAML reading over libyaml events.
 *
 * Events rather than libyaml's document API: the caller walks its schema and stops at the
 * first thing it does not expect, so hostile input (deep nesting, alias bombs, huge
 * sequences) is refused after a few events instead of being loaded into a tree first.
 */
#include "core/yamlread.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	YAMLREAD_NUMBER_MAX_DIGITS = 10, /* every limit fits in an unsigned int */
	YAMLREAD_KEY_LIST_MAX = 640,     /* the accepted keys, listed in an unknown-key message */
};

bool yamlread_init(struct yamlread *r, const char *source, const char *text, size_t len, char *err,
		   size_t err_len)
{
	if (err_len)
		err[0] = '\0';
	memset(r, 0, sizeof(*r));
	r->source = source;
	r->text = text;
	r->len = len;
	r->err = err;
	r->err_len = err_len;
	if (!yaml_parser_initialize(&r->yp)) {
		snprintf(err, err_len, "%s: out of memory", source);
		return false;
	}
	/* Reads exactly len bytes: the text need not be NUL-terminated. UTF-8 only, so a
	 * reader error's byte offset maps straight onto the text. */
	yaml_parser_set_input_string(&r->yp, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&r->yp, YAML_UTF8_ENCODING);
	return true;
}

static void drop_event(struct yamlread *r)
{
	if (!r->have_event)
		return;
	/* Scalars may be keys: wipe every one rather than track which. */
	if (r->ev.type == YAML_SCALAR_EVENT && r->ev.data.scalar.value)
		sodium_memzero(r->ev.data.scalar.value, r->ev.data.scalar.length);
	yaml_event_delete(&r->ev);
	r->have_event = false;
}

void yamlread_cleanup(struct yamlread *r)
{
	yaml_parser_t *yp = &r->yp;

	drop_event(r);
	/* libyaml frees its input buffers without clearing them, and they hold the raw text,
	 * keys included. */
	if (yp->buffer.start && yp->buffer.end > yp->buffer.start)
		sodium_memzero(yp->buffer.start, (size_t)(yp->buffer.end - yp->buffer.start));
	if (yp->raw_buffer.start && yp->raw_buffer.end > yp->raw_buffer.start)
		sodium_memzero(yp->raw_buffer.start, (size_t)(yp->raw_buffer.end - yp->raw_buffer.start));
	yaml_parser_delete(yp);
}

void yamlread_fail(struct yamlread *r, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (r->failed)
		return;
	r->failed = true;
	if (r->err_len == 0)
		return;
	n = snprintf(r->err, r->err_len, "%s:%zu:%zu: ", r->source, mark.line + 1, mark.column + 1);
	if (n < 0 || (size_t)n >= r->err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(r->err + n, r->err_len - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Printable ASCII only and bounded, so a hostile file cannot write escape sequences or
 * pages of text into the log. */
const char *yamlread_quote(const char *s, size_t len, char out[YAMLREAD_QUOTE_BUF])
{
	size_t n = len < YAMLREAD_QUOTE_MAX ? len : YAMLREAD_QUOTE_MAX;

	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > YAMLREAD_QUOTE_MAX) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

const char *yamlread_kind(const struct yamlread *r)
{
	switch (r->ev.type) {
	case YAML_SCALAR_EVENT:
		return "a single value";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "the end of a block";
	}
}

static void mark_from_offset(const struct yamlread *r, size_t offset, yaml_mark_t *mark)
{
	size_t line = 0, line_start = 0;

	if (offset > r->len)
		offset = r->len;
	for (size_t i = 0; i < offset; i++) {
		if (r->text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	memset(mark, 0, sizeof(*mark));
	mark->index = offset;
	mark->line = line;
	mark->column = offset - line_start;
}

static void fail_syntax(struct yamlread *r)
{
	const yaml_parser_t *yp = &r->yp;
	const char *problem = yp->problem ? yp->problem : "unknown problem";
	yaml_mark_t mark;

	switch (yp->error) {
	case YAML_MEMORY_ERROR:
		mark_from_offset(r, 0, &mark);
		yamlread_fail(r, mark, "out of memory while parsing YAML");
		break;
	case YAML_READER_ERROR:
		mark_from_offset(r, yp->problem_offset, &mark);
		if (yp->problem_value != -1)
			yamlread_fail(r, mark, "invalid input: %s (byte 0x%02x)", problem,
				      (unsigned int)yp->problem_value & 0xffu);
		else
			yamlread_fail(r, mark, "invalid input: %s", problem);
		break;
	default:
		if (yp->context)
			yamlread_fail(r, yp->problem_mark, "YAML syntax error: %s (%s at line %zu, column %zu)",
				      problem, yp->context, yp->context_mark.line + 1, yp->context_mark.column + 1);
		else
			yamlread_fail(r, yp->problem_mark, "YAML syntax error: %s", problem);
		break;
	}
}

bool yamlread_next(struct yamlread *r)
{
	drop_event(r);
	if (!yaml_parser_parse(&r->yp, &r->ev)) {
		fail_syntax(r);
		return false;
	}
	r->have_event = true;
	if (r->ev.type == YAML_ALIAS_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "YAML aliases (*name) are not supported in this file");
		return false;
	}
	return true;
}

bool yamlread_is_null(const struct yamlread *r)
{
	if (r->ev.type != YAML_SCALAR_EVENT || r->ev.data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return yamlread_len(r) == 0 || strcmp(yamlread_value(r), "~") == 0 || strcmp(yamlread_value(r), "null") == 0;
}

bool yamlread_mapping_list_begin(struct yamlread *r, const char *key, const char *what, bool *has_items)
{
	*has_items = false;
	if (!yamlread_next(r))
		return false;
	if (yamlread_is_null(r))
		return true;
	if (r->ev.type != YAML_SEQUENCE_START_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "'%s' must be a list of %s, not %s", key, what, yamlread_kind(r));
		return false;
	}
	*has_items = true;
	return true;
}

int yamlread_mapping_list_next(struct yamlread *r, const char *item_must)
{
	if (!yamlread_next(r))
		return -1;
	if (r->ev.type == YAML_SEQUENCE_END_EVENT)
		return 0;
	if (r->ev.type != YAML_MAPPING_START_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "%s, not %s", item_must, yamlread_kind(r));
		return -1;
	}
	return 1;
}

bool yamlread_begin(struct yamlread *r, const char *what, const char *example, yaml_mark_t *start)
{
	if (!yamlread_next(r))
		return false;
	if (r->ev.type != YAML_STREAM_START_EVENT) { /* libyaml always starts with it */
		yamlread_fail(r, r->ev.start_mark, "internal YAML error: no stream start");
		return false;
	}
	if (!yamlread_next(r))
		return false;
	if (r->ev.type == YAML_STREAM_END_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "the %s is empty (expected settings such as '%s')", what, example);
		return false;
	}
	/* The parser emits DOCUMENT_START before any content, even without "---". */
	if (!yamlread_next(r))
		return false;
	*start = r->ev.start_mark;
	if (r->ev.type != YAML_MAPPING_START_EVENT) {
		yamlread_fail(r, *start, "the %s must be a mapping of settings ('key: value' lines), not %s", what,
			      yamlread_kind(r));
		return false;
	}
	return true;
}

bool yamlread_end(struct yamlread *r, const char *what)
{
	if (!yamlread_next(r)) /* DOCUMENT_END: nothing else can follow a complete mapping */
		return false;
	if (!yamlread_next(r))
		return false;
	if (r->ev.type != YAML_STREAM_END_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "only one YAML document is allowed in the %s", what);
		return false;
	}
	return true;
}

/* "a, b, c": the keys a mapping accepts, for the unknown-key message. */
static const char *key_list(const char *const *keys, size_t n_keys, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_keys && off < cap; i++) {
		int w = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", keys[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

bool yamlread_key(struct yamlread *r, const char *const *keys, size_t n_keys, size_t *seen_line,
		  const char *what, size_t *idx, bool *done)
{
	char q[YAMLREAD_QUOTE_BUF], expected[YAMLREAD_KEY_LIST_MAX];
	const char *s;
	size_t len;

	*done = false;
	if (!yamlread_next(r))
		return false;
	if (r->ev.type == YAML_MAPPING_END_EVENT) {
		*done = true;
		return true;
	}
	if (r->ev.type != YAML_SCALAR_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "expected a %skey name, found %s", what, yamlread_kind(r));
		return false;
	}
	s = yamlread_value(r);
	len = yamlread_len(r);
	for (size_t i = 0; i < n_keys; i++) {
		if (strlen(keys[i]) == len && memcmp(keys[i], s, len) == 0) {
			if (seen_line[i]) {
				yamlread_fail(r, r->ev.start_mark, "duplicate key '%s' (first given at line %zu)",
					      keys[i], seen_line[i]);
				return false;
			}
			seen_line[i] = r->ev.start_mark.line + 1;
			*idx = i;
			return true;
		}
	}
	yamlread_fail(r, r->ev.start_mark, "unknown %skey '%s' (expected one of: %s)", what,
		      yamlread_quote(s, len, q), key_list(keys, n_keys, expected, sizeof(expected)));
	return false;
}

bool yamlread_scalar(struct yamlread *r, const char *key)
{
	if (!yamlread_next(r))
		return false;
	if (r->ev.type != YAML_SCALAR_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "'%s' must be a single value, not %s", key, yamlread_kind(r));
		return false;
	}
	/* A double-quoted "\0" yields a NUL byte inside the value, which C strings would
	 * silently cut: "key\0.evil" must not quietly become "key". */
	if (memchr(yamlread_value(r), '\0', yamlread_len(r))) {
		yamlread_fail(r, r->ev.start_mark, "'%s' contains a NUL character", key);
		return false;
	}
	return true;
}

/* Decimal only. A leading zero is refused because YAML 1.1 reads "0123" as octal, and
 * "+1", "1_000", "0x10" or " 1" would each mean something else to some other tool. */
bool yamlread_uint(struct yamlread *r, const char *key, unsigned int min, unsigned int max, unsigned int *out)
{
	char q[YAMLREAD_QUOTE_BUF];
	const char *s;
	unsigned long v;
	char *end;
	size_t len;

	if (!yamlread_scalar(r, key))
		return false;
	s = yamlread_value(r);
	len = yamlread_len(r);
	if (len == 0 || len > YAMLREAD_NUMBER_MAX_DIGITS || (len > 1 && s[0] == '0'))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end != s + len || v < min || v > max)
		goto bad;
	*out = (unsigned int)v;
	return true;
bad:
	yamlread_fail(r, r->ev.start_mark, "'%s' must be a whole number from %u to %u, got '%s'", key, min, max,
		      yamlread_quote(s, len, q));
	return false;
}

bool yamlread_string(struct yamlread *r, const char *key, char *buf, size_t cap)
{
	if (!yamlread_scalar(r, key))
		return false;
	if (yamlread_len(r) == 0) {
		yamlread_fail(r, r->ev.start_mark, "'%s' must not be empty", key);
		return false;
	}
	if (yamlread_len(r) >= cap) {
		yamlread_fail(r, r->ev.start_mark, "'%s' is too long (at most %zu characters)", key, cap - 1);
		return false;
	}
	memcpy(buf, yamlread_value(r), yamlread_len(r) + 1);
	return true;
}

bool yamlread_list(struct yamlread *r, const char *key, const char *noun, const char *nouns,
		   yamlread_item_fn *item, void *ctx)
{
	yaml_mark_t start;
	size_t n = 0;

	if (!yamlread_next(r))
		return false;
	start = r->ev.start_mark;
	if (r->ev.type == YAML_SCALAR_EVENT)
		return item(r, key, ctx);
	if (r->ev.type != YAML_SEQUENCE_START_EVENT) {
		yamlread_fail(r, start, "'%s' must be a %s or a list of %s, not %s", key, noun, nouns,
			      yamlread_kind(r));
		return false;
	}
	for (;;) {
		if (!yamlread_next(r))
			return false;
		if (r->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (r->ev.type != YAML_SCALAR_EVENT) {
			yamlread_fail(r, r->ev.start_mark, "'%s' entries must be single %s, not %s", key, nouns,
				      yamlread_kind(r));
			return false;
		}
		if (!item(r, key, ctx))
			return false;
		n++;
	}
	if (n == 0) {
		yamlread_fail(r, start, "'%s' must list at least one %s", key, noun);
		return false;
	}
	return true;
}

bool yamlread_load_file(const char *path, size_t max, char **text, size_t *len, struct stat *st, char *err,
			size_t err_len)
{
	char *buf = NULL;
	size_t got = 0;
	int fd;

	if (max >= SIZE_MAX) { /* the buffer holds max + 1 bytes */
		snprintf(err, err_len, "%s: file size limit too large", path);
		return false;
	}
	/* O_NONBLOCK: a FIFO must not hang start-up before fstat can refuse it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, st) < 0) {
		snprintf(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		goto fail;
	}
	if ((unsigned long long)st->st_size > max) { /* a regular file's size is never negative */
		snprintf(err, err_len, "%s: file is too large (%lld bytes; at most %zu)", path, (long long)st->st_size,
			 max);
		goto fail;
	}
	/* Read to EOF, not st_size: the file may be growing; one extra byte notices that. */
	buf = malloc(max + 1);
	if (!buf) {
		snprintf(err, err_len, "%s: out of memory", path);
		goto fail;
	}
	while (got <= max) {
		ssize_t n = read(fd, buf + got, max + 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		snprintf(err, err_len, "%s: file is too large (at most %zu bytes)", path, max);
		goto fail;
	}
	close(fd);
	*text = buf;
	*len = got;
	return true;
fail:
	if (buf) {
		sodium_memzero(buf, got);
		free(buf);
	}
	close(fd);
	return false;
}
