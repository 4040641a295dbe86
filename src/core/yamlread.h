/* Strict YAML reading for configuration files, independent of any one schema (meshd's node
 * config, meshcoord's). The caller walks its schema over libyaml events, one at a time; this
 * module owns the current event, refuses aliases, reads scalars strictly (decimal numbers in
 * a range, bounded strings, known keys given once) and keeps the first error as
 * "SOURCE:LINE:COL: message".
 *
 * Usage: yamlread_init, yamlread_begin (the top-level mapping), yamlread_key in a loop with
 * one value reader per key, yamlread_end, and yamlread_cleanup on every path. Every reader
 * returns false once something is wrong; the message is then already in err, and later
 * failures never overwrite it (they would only be consequences of the first). */
#ifndef MESHD_YAMLREAD_H
#define MESHD_YAMLREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <yaml.h>

enum {
	YAMLREAD_QUOTE_MAX = 48,                     /* longest user text echoed back in an error */
	YAMLREAD_QUOTE_BUF = YAMLREAD_QUOTE_MAX + 4, /* plus "..." and the NUL */
};

/* Callers read `ev` (the current event, valid after a reader returned true) and `failed`;
 * the rest is private. */
struct yamlread {
	yaml_parser_t yp;
	yaml_event_t ev;
	bool have_event;      /* ev is owned and must be deleted */
	const char *source;
	const char *text;     /* the input, to turn a reader error's byte offset into line:col */
	size_t len;
	char *err;
	size_t err_len;
	bool failed;
};

/* Reads exactly len bytes of UTF-8 from text (no NUL terminator needed); source names it in
 * messages. Clears err. False (with "SOURCE: out of memory" in err) if libyaml cannot start;
 * yamlread_cleanup is then not needed. */
bool yamlread_init(struct yamlread *r, const char *source, const char *text, size_t len, char *err,
		   size_t err_len);
/* Frees the reader and wipes every copy of the input libyaml made: config text can hold keys. */
void yamlread_cleanup(struct yamlread *r);

/* Records "SOURCE:LINE:COL: message" at mark, unless an error is already recorded. */
void yamlread_fail(struct yamlread *r, yaml_mark_t mark, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* User text for an error message: printable ASCII only, at most YAMLREAD_QUOTE_MAX bytes. */
const char *yamlread_quote(const char *s, size_t len, char out[YAMLREAD_QUOTE_BUF]);
/* What the current event is, for "must be X, not a list" messages. */
const char *yamlread_kind(const struct yamlread *r);

/* Advances to the next event. Aliases are refused: no config needs them, and refusing them
 * rules out "billion laughs" expansion. */
bool yamlread_next(struct yamlread *r);

/* The current event's scalar value: NUL-terminated, but may hold NUL bytes of its own unless
 * it was read by yamlread_scalar. Only valid while the current event is a scalar. */
static inline const char *yamlread_value(const struct yamlread *r)
{
	return (const char *)r->ev.data.scalar.value;
}

static inline size_t yamlread_len(const struct yamlread *r)
{
	return r->ev.data.scalar.length;
}

/* The current event is an unquoted empty value, "~" or "null" ("key:" with nothing after). */
bool yamlread_is_null(const struct yamlread *r);

/* A key whose value is a list of mappings (peers, rules): reads the value's start. False on
 * error ("'KEY' must be a list of WHAT, not ..."); else *has_items is false for an empty value
 * ("key:" alone, every item commented out) and true at the start of a list. */
bool yamlread_mapping_list_begin(struct yamlread *r, const char *key, const char *what, bool *has_items);
/* The next item of such a list: 1 at the start of a mapping (the caller reads it), 0 at the
 * end of the list, -1 on error (reported as "ITEM_MUST, not ...", e.g. "each peer must be a
 * mapping (public_key: ...)"). */
int yamlread_mapping_list_next(struct yamlread *r, const char *item_must);

/* Reads the stream and document start and the top-level mapping's start, whose position goes
 * to *start. `what` names the document ("configuration") and `example` is a setting to
 * suggest when the input is empty. */
bool yamlread_begin(struct yamlread *r, const char *what, const char *example, yaml_mark_t *start);
/* After the top-level mapping: refuses a second document. */
bool yamlread_end(struct yamlread *r, const char *what);

/* Reads the next key of a mapping: false on error, *done at the end of the mapping, else the
 * key's index in keys[n_keys] in *idx. seen_line[n_keys] starts zeroed and records the line
 * of each key given, to refuse duplicates and, after the loop, to find missing keys. `what`
 * prefixes "key" in messages ("peer " gives "unknown peer key"). */
bool yamlread_key(struct yamlread *r, const char *const *keys, size_t n_keys, size_t *seen_line,
		  const char *what, size_t *idx, bool *done);

/* Value readers: each reads the value of `key`, which must be a single scalar without NUL
 * bytes. yamlread_uint takes decimal only, no sign or leading zero, from min to max. */
bool yamlread_scalar(struct yamlread *r, const char *key);
bool yamlread_uint(struct yamlread *r, const char *key, unsigned int min, unsigned int max, unsigned int *out);
/* A non-empty string of fewer than cap bytes, copied with its NUL into buf. */
bool yamlread_string(struct yamlread *r, const char *key, char *buf, size_t cap);

/* Called with each entry of a list as the current scalar event; must check the value itself
 * (it may hold NUL bytes) and record any error with yamlread_fail. */
typedef bool yamlread_item_fn(struct yamlread *r, const char *key, void *ctx);
/* A value that is one scalar or a list of scalars, with at least one entry. noun and nouns
 * name an entry in messages ("prefix", "prefixes"). */
bool yamlread_list(struct yamlread *r, const char *key, const char *noun, const char *nouns,
		   yamlread_item_fn *item, void *ctx);

/* Reads a whole regular file of at most max bytes into a malloc'd *text (not NUL-terminated)
 * for yamlread_init; *st is its fstat. On failure err holds "PATH: what is wrong". The caller
 * wipes and frees *text. */
bool yamlread_load_file(const char *path, size_t max, char **text, size_t *len, struct stat *st, char *err,
			size_t err_len);

#endif
