/* A small, bounds-checked JSON reader for test-vector files such as noise-25519.json.
 *
 * It walks objects and arrays and reads strings (hex strings in particular). Numbers and the
 * literals true/false/null are checked loosely and can only be skipped; string escapes are
 * checked but not decoded, so json_string() refuses a string that contains one. A value is a
 * span of the document text and every function takes and checks explicit lengths.
 */
#ifndef MESHD_TEST_JSON_VECTORS_H
#define MESHD_TEST_JSON_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { JSON_MAX_DEPTH = 32 }; /* nesting allowed before a document is refused (bounds the recursion) */

struct json_value {
	const char *text; /* first character of the value */
	size_t len;       /* up to and including its last character */
};

struct json_array_iter {
	struct json_value array;
	size_t pos;     /* next character to look at inside array.text */
	bool done;      /* the closing bracket was reached */
	bool malformed; /* iteration stopped at bad input */
};

/* Checks that text[0..len) is exactly one JSON value with optional surrounding whitespace. */
bool json_parse(const char *text, size_t len, struct json_value *root);

bool json_is_object(struct json_value v);
bool json_is_array(struct json_value v);
bool json_is_string(struct json_value v);

/* Finds the first member named `key` (compared byte for byte, no escapes) in an object. */
bool json_object_get(struct json_value object, const char *key, size_t key_len, struct json_value *out);

/* Iterates over an array: json_array_next() returns false at the end or on malformed input,
 * which the iterator's done and malformed flags tell apart. */
bool json_array_iter_init(struct json_array_iter *it, struct json_value array);
bool json_array_next(struct json_array_iter *it, struct json_value *elem);

/* The contents of a string between its quotes; false if it is no string or has an escape. */
bool json_string(struct json_value v, const char **s, size_t *len);
bool json_string_equals(struct json_value v, const char *s, size_t len);

/* Decodes a string of hex digits into out (at most cap bytes); false on odd length, a non-hex
 * character or too little room. */
bool json_hex(struct json_value v, uint8_t *out, size_t cap, size_t *out_len);

#endif
