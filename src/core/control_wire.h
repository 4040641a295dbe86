/* The control codec's byte writer and reader (control.c only): fixed buffers, big-endian
 * integers, and an ok flag that the first write that does not fit, or the first read past
 * the end, turns off for good, so a message is checked once at its end. */
#ifndef CORE_CONTROL_WIRE_H
#define CORE_CONTROL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- writer */

/* Appends to a fixed buffer; the first write that does not fit turns ok off for good. */
struct writer {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool ok;
};

static inline void put_bytes(struct writer *w, const void *src, size_t n)
{
	if (!w->ok || n > w->cap - w->len) {
		w->ok = false;
		return;
	}
	if (n)
		memcpy(w->p + w->len, src, n);
	w->len += n;
}

static inline void put_u8(struct writer *w, uint8_t v)
{
	put_bytes(w, &v, 1);
}

static inline void put_u16(struct writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	put_bytes(w, b, sizeof(b));
}

static inline void put_u32(struct writer *w, uint32_t v)
{
	put_u16(w, (uint16_t)(v >> 16));
	put_u16(w, (uint16_t)v);
}

static inline void put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

/* ---------------------------------------------------------------- reader */

/* Consumes a buffer of known length; the first read past the end turns ok off for good and
 * every later read returns zeros, so a parser can read on and check ok once per field. */
struct reader {
	const uint8_t *p;
	size_t left;
	bool ok;
};

static inline void get_bytes(struct reader *r, void *dst, size_t n)
{
	if (!r->ok || n > r->left) {
		r->ok = false;
		memset(dst, 0, n);
		return;
	}
	if (n)
		memcpy(dst, r->p, n);
	r->p += n;
	r->left -= n;
}

static inline uint8_t get_u8(struct reader *r)
{
	uint8_t v;

	get_bytes(r, &v, 1);
	return v;
}

static inline uint16_t get_u16(struct reader *r)
{
	uint8_t b[2];

	get_bytes(r, b, sizeof(b));
	return (uint16_t)(b[0] << 8 | b[1]);
}

static inline uint32_t get_u32(struct reader *r)
{
	uint32_t hi = get_u16(r);

	return hi << 16 | get_u16(r);
}

static inline uint64_t get_u64(struct reader *r)
{
	uint64_t hi = get_u32(r);

	return hi << 32 | get_u32(r);
}

#endif
