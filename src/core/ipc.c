/* The control socket codec (see ipc.h). No I/O: the daemon and the CLI do the reading. */
#include "core/ipc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	IPC_TEXT_INITIAL_CAP = 4096, /* one status of a small mesh fits without growing */
};

static const uint8_t request_magic[IPC_MAGIC_LEN] = { 'M', 'S', 'H', 'Q' };
static const uint8_t response_magic[IPC_MAGIC_LEN] = { 'M', 'S', 'H', 'R' };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* Printable ASCII without spaces: a name or an address, safe to quote in any log line. */
static bool arg_valid(const char *arg, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (arg[i] <= 0x20 || arg[i] >= 0x7f)
			return false;
	return true;
}

/* The magic and version shared by both directions: OK when both are ours. */
static enum ipc_decode decode_prefix(const uint8_t *buf, size_t len, const uint8_t magic[IPC_MAGIC_LEN],
				     uint16_t *version)
{
	size_t have = len < IPC_MAGIC_LEN ? len : IPC_MAGIC_LEN;
	if (memcmp(buf, magic, have) != 0)
		return IPC_DECODE_BAD_MAGIC;
	if (len < IPC_PREFIX_LEN)
		return IPC_DECODE_INCOMPLETE;
	*version = get16(buf + IPC_MAGIC_LEN);
	return *version == IPC_VERSION ? IPC_DECODE_OK : IPC_DECODE_VERSION;
}

size_t ipc_request_encode(uint16_t command, uint16_t flags, const char *arg, uint8_t *out, size_t cap)
{
	size_t arg_len = arg ? strnlen(arg, IPC_ARG_MAX + 1) : 0;
	if (arg_len > IPC_ARG_MAX || !arg_valid(arg, arg_len) || cap < IPC_REQUEST_HEADER_LEN + arg_len)
		return 0;
	memcpy(out, request_magic, IPC_MAGIC_LEN);
	put16(out + IPC_MAGIC_LEN, IPC_VERSION);
	put16(out + IPC_PREFIX_LEN, command);
	put16(out + IPC_PREFIX_LEN + 2, flags);
	put16(out + IPC_PREFIX_LEN + 4, (uint16_t)arg_len);
	if (arg_len)
		memcpy(out + IPC_REQUEST_HEADER_LEN, arg, arg_len);
	return IPC_REQUEST_HEADER_LEN + arg_len;
}

enum ipc_decode ipc_request_decode(const uint8_t *buf, size_t len, struct ipc_request *out, size_t *consumed)
{
	memset(out, 0, sizeof(*out));
	*consumed = 0;
	enum ipc_decode rc = decode_prefix(buf, len, request_magic, &out->version);
	if (rc != IPC_DECODE_OK)
		return rc;
	if (len < IPC_REQUEST_HEADER_LEN)
		return IPC_DECODE_INCOMPLETE;
	out->command = get16(buf + IPC_PREFIX_LEN);
	out->flags = get16(buf + IPC_PREFIX_LEN + 2);
	size_t arg_len = get16(buf + IPC_PREFIX_LEN + 4);
	if (arg_len > IPC_ARG_MAX || (out->flags & ~IPC_FLAGS_KNOWN))
		return IPC_DECODE_MALFORMED;
	if (len - IPC_REQUEST_HEADER_LEN < arg_len)
		return IPC_DECODE_INCOMPLETE;
	const char *arg = (const char *)buf + IPC_REQUEST_HEADER_LEN;
	if (!arg_valid(arg, arg_len))
		return IPC_DECODE_MALFORMED;
	memcpy(out->arg, arg, arg_len);
	out->arg[arg_len] = '\0';
	out->arg_len = arg_len;
	*consumed = IPC_REQUEST_HEADER_LEN + arg_len;
	return IPC_DECODE_OK;
}

void ipc_response_header_encode(uint16_t status, uint32_t body_len, uint8_t out[IPC_RESPONSE_HEADER_LEN])
{
	memcpy(out, response_magic, IPC_MAGIC_LEN);
	put16(out + IPC_MAGIC_LEN, IPC_VERSION);
	put16(out + IPC_PREFIX_LEN, status);
	put32(out + IPC_PREFIX_LEN + 2, body_len);
}

enum ipc_decode ipc_response_header_decode(const uint8_t *buf, size_t len, struct ipc_response_header *out)
{
	memset(out, 0, sizeof(*out));
	enum ipc_decode rc = decode_prefix(buf, len, response_magic, &out->version);
	if (rc != IPC_DECODE_OK)
		return rc;
	if (len < IPC_RESPONSE_HEADER_LEN)
		return IPC_DECODE_INCOMPLETE;
	out->status = get16(buf + IPC_PREFIX_LEN);
	out->body_len = get32(buf + IPC_PREFIX_LEN + 2);
	if (out->status > IPC_STATUS_VERSION || out->body_len > IPC_BODY_MAX)
		return IPC_DECODE_MALFORMED;
	return IPC_DECODE_OK;
}

/* ---------------------------------------------------------------- body text */

void ipc_text_init(struct ipc_text *t)
{
	memset(t, 0, sizeof(*t));
}

void ipc_text_free(struct ipc_text *t)
{
	free(t->buf);
	ipc_text_init(t);
}

/* Room for `more` bytes plus a NUL; false (and failed) if that passes IPC_BODY_MAX. */
static bool reserve(struct ipc_text *t, size_t more)
{
	if (t->failed)
		return false;
	if (more > IPC_BODY_MAX - t->len) {
		t->failed = true;
		return false;
	}
	size_t need = t->len + more + 1;
	if (need <= t->cap)
		return true;
	size_t cap = t->cap ? t->cap : IPC_TEXT_INITIAL_CAP;
	while (cap < need)
		cap *= 2;
	char *grown = realloc(t->buf, cap);
	if (!grown) {
		t->failed = true;
		return false;
	}
	t->buf = grown;
	t->cap = cap;
	return true;
}

void ipc_text_printf(struct ipc_text *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		t->failed = true;
		return;
	}
	if (!reserve(t, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

void ipc_text_json_string(struct ipc_text *t, const char *s, size_t len)
{
	enum { JSON_ESCAPE_MAX = 6 }; /* the longest escape of one byte: \u00XX */
	if (len > (IPC_BODY_MAX - 2) / JSON_ESCAPE_MAX || !reserve(t, 2 + len * JSON_ESCAPE_MAX))
		return (void)(t->failed = true);
	char *o = t->buf + t->len;
	*o++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c < 0x20) {
			o += snprintf(o, JSON_ESCAPE_MAX + 1, "\\u%04x", c);
		} else {
			*o++ = c >= 0x7f ? '?' : (char)c;
		}
	}
	*o++ = '"';
	*o = '\0';
	t->len = (size_t)(o - t->buf);
}
