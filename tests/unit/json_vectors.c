/* Purpose-built JSON reader for test vectors: see json_vectors.h. Every cursor is a size_t
 * index compared with the span length before each read, so a truncated or hostile file
 * ends in `false`, never in a read past the buffer. */
#include "json_vectors.h"

#include <string.h>

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_space(const char *p, size_t len, size_t pos)
{
	while (pos < len && is_space(p[pos]))
		pos++;
	return pos;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* *pos is at the opening quote; leaves it after the closing one. */
static bool skip_string(const char *p, size_t len, size_t *pos)
{
	size_t i = *pos + 1;

	while (i < len) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"') {
			*pos = i + 1;
			return true;
		}
		if (c < 0x20) /* control characters must be escaped in JSON */
			return false;
		if (c == '\\') {
			if (len - i < 2)
				return false;
			if (p[i + 1] == 'u') {
				size_t k;

				if (len - i < 6)
					return false;
				for (k = 2; k < 6; k++)
					if (hex_digit(p[i + k]) < 0)
						return false;
				i += 6;
				continue;
			}
			if (!strchr("\"\\/bfnrt", p[i + 1]) || p[i + 1] == '\0')
				return false;
			i += 2;
			continue;
		}
		i++;
	}
	return false;
}

static size_t skip_digits(const char *p, size_t len, size_t pos)
{
	while (pos < len && p[pos] >= '0' && p[pos] <= '9')
		pos++;
	return pos;
}

/* -?digits(.digits)?([eE][+-]?digits)? : the value is never decoded, only delimited. */
static bool skip_number(const char *p, size_t len, size_t *pos)
{
	size_t i = *pos, d;

	if (i < len && p[i] == '-')
		i++;
	d = skip_digits(p, len, i);
	if (d == i)
		return false;
	i = d;
	if (i < len && p[i] == '.') {
		d = skip_digits(p, len, i + 1);
		if (d == i + 1)
			return false;
		i = d;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		d = skip_digits(p, len, i);
		if (d == i)
			return false;
		i = d;
	}
	*pos = i;
	return true;
}

static bool skip_literal(const char *p, size_t len, size_t *pos)
{
	static const char *const literals[] = { "true", "false", "null" };
	size_t i;

	for (i = 0; i < sizeof(literals) / sizeof(literals[0]); i++) {
		size_t n = strlen(literals[i]);

		if (len - *pos >= n && memcmp(p + *pos, literals[i], n) == 0) {
			*pos += n;
			return true;
		}
	}
	return false;
}

static bool skip_value(const char *p, size_t len, size_t *pos, unsigned int depth);

/* Object or array: *pos is at '{' or '['. */
static bool skip_container(const char *p, size_t len, size_t *pos, unsigned int depth)
{
	char close = p[*pos] == '{' ? '}' : ']';
	bool object = close == '}';
	size_t i;

	if (depth >= JSON_MAX_DEPTH)
		return false;
	i = skip_space(p, len, *pos + 1);
	if (i < len && p[i] == close) {
		*pos = i + 1;
		return true;
	}
	for (;;) {
		if (object) {
			if (i >= len || p[i] != '"' || !skip_string(p, len, &i))
				return false;
			i = skip_space(p, len, i);
			if (i >= len || p[i] != ':')
				return false;
			i = skip_space(p, len, i + 1);
		}
		if (!skip_value(p, len, &i, depth + 1))
			return false;
		i = skip_space(p, len, i);
		if (i >= len)
			return false;
		if (p[i] == close) {
			*pos = i + 1;
			return true;
		}
		if (p[i] != ',')
			return false;
		i = skip_space(p, len, i + 1);
	}
}

/* *pos is at the first character of a value; leaves it just after the value. */
static bool skip_value(const char *p, size_t len, size_t *pos, unsigned int depth)
{
	if (*pos >= len)
		return false;
	switch (p[*pos]) {
	case '{':
	case '[':
		return skip_container(p, len, pos, depth);
	case '"':
		return skip_string(p, len, pos);
	case 't':
	case 'f':
	case 'n':
		return skip_literal(p, len, pos);
	default:
		return skip_number(p, len, pos);
	}
}

bool json_parse(const char *text, size_t len, struct json_value *root)
{
	size_t start, end;

	if (!text)
		return false;
	start = skip_space(text, len, 0);
	end = start;
	if (!skip_value(text, len, &end, 0))
		return false;
	if (skip_space(text, len, end) != len)
		return false;
	root->text = text + start;
	root->len = end - start;
	return true;
}

static bool starts_with(struct json_value v, char c)
{
	return v.text && v.len > 0 && v.text[0] == c;
}

bool json_is_object(struct json_value v)
{
	return starts_with(v, '{');
}

bool json_is_array(struct json_value v)
{
	return starts_with(v, '[');
}

bool json_is_string(struct json_value v)
{
	return starts_with(v, '"') && v.len >= 2 && v.text[v.len - 1] == '"';
}

bool json_object_get(struct json_value object, const char *key, size_t key_len, struct json_value *out)
{
	const char *p = object.text;
	size_t len = object.len, i;

	if (!json_is_object(object))
		return false;
	i = skip_space(p, len, 1);
	if (i < len && p[i] == '}')
		return false;
	for (;;) {
		struct json_value name = { p + i, 0 };
		size_t value_start;

		if (i >= len || p[i] != '"' || !skip_string(p, len, &i))
			return false;
		name.len = (size_t)(p + i - name.text);
		i = skip_space(p, len, i);
		if (i >= len || p[i] != ':')
			return false;
		i = skip_space(p, len, i + 1);
		value_start = i;
		if (!skip_value(p, len, &i, 1))
			return false;
		if (json_string_equals(name, key, key_len)) {
			out->text = p + value_start;
			out->len = i - value_start;
			return true;
		}
		i = skip_space(p, len, i);
		if (i >= len || p[i] != ',')
			return false; /* '}' (not found) or malformed */
		i = skip_space(p, len, i + 1);
	}
}

bool json_array_iter_init(struct json_array_iter *it, struct json_value array)
{
	if (!json_is_array(array))
		return false;
	it->array = array;
	it->pos = skip_space(array.text, array.len, 1);
	it->done = it->pos < array.len && array.text[it->pos] == ']';
	it->malformed = false;
	return true;
}

bool json_array_next(struct json_array_iter *it, struct json_value *elem)
{
	const char *p = it->array.text;
	size_t len = it->array.len, start = it->pos, i = it->pos;

	if (it->done || it->malformed)
		return false;
	if (!skip_value(p, len, &i, 1))
		goto malformed;
	elem->text = p + start;
	elem->len = i - start;
	i = skip_space(p, len, i);
	if (i >= len)
		goto malformed;
	if (p[i] == ']')
		it->done = true;
	else if (p[i] == ',')
		i = skip_space(p, len, i + 1);
	else
		goto malformed;
	it->pos = i;
	return true;

malformed:
	it->malformed = true;
	return false;
}

bool json_string(struct json_value v, const char **s, size_t *len)
{
	size_t i;

	if (!json_is_string(v))
		return false;
	for (i = 1; i + 1 < v.len; i++)
		if (v.text[i] == '\\' || v.text[i] == '"')
			return false;
	*s = v.text + 1;
	*len = v.len - 2;
	return true;
}

bool json_string_equals(struct json_value v, const char *s, size_t len)
{
	const char *contents;
	size_t contents_len;

	return json_string(v, &contents, &contents_len) && contents_len == len && memcmp(contents, s, len) == 0;
}

bool json_hex(struct json_value v, uint8_t *out, size_t cap, size_t *out_len)
{
	const char *s;
	size_t len, i;

	if (!json_string(v, &s, &len) || len % 2 != 0 || len / 2 > cap)
		return false;
	for (i = 0; i < len / 2; i++) {
		int hi = hex_digit(s[2 * i]), lo = hex_digit(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_len = len / 2;
	return true;
}
