/* A published stream's pump (splice.h). Every step is non-blocking and bounded by the
 * buffers: a read happens only into room the other direction can take. */
#include "splice.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

enum {
	/* Passes over both directions per pump: each pass moves at most one buffer's worth
	 * each way, so a pump is bounded; the loop wakes again for what is left. */
	SPLICE_PUMP_ROUNDS = 4,
	DGRAM_LEN_PREFIX = 2, /* to_plain holds datagrams as length + bytes */
};

_Static_assert(SPLICE_BUF_CAP >= 2 * PUBWIRE_MAX_SEALED, "a buffer holds a few frames");
_Static_assert(PUBWIRE_MAX_DATA <= UINT16_MAX, "a datagram's length fits its prefix");

/* ---------------------------------------------------------------- buffers */

static size_t buf_pending(const struct splice_buf *b)
{
	return b->len - b->off;
}

static size_t buf_room(const struct splice_buf *b)
{
	return SPLICE_BUF_CAP - buf_pending(b);
}

/* need contiguous bytes at the end, or NULL (no memory, or not that much room). */
static uint8_t *buf_tail(struct splice_buf *b, size_t need)
{
	if (!b->data) {
		b->data = malloc(SPLICE_BUF_CAP);
		if (!b->data)
			return NULL;
		b->off = b->len = 0;
	}
	if (SPLICE_BUF_CAP - b->len < need && b->off > 0) {
		size_t pending = buf_pending(b);
		memmove(b->data, b->data + b->off, pending);
		b->off = 0;
		b->len = pending;
	}
	return SPLICE_BUF_CAP - b->len >= need ? b->data + b->len : NULL;
}

static void buf_consumed(struct splice_buf *b, size_t n)
{
	b->off += n;
	if (b->off == b->len)
		b->off = b->len = 0;
}

static void buf_free(struct splice_buf *b)
{
	if (b->data) {
		sodium_memzero(b->data, SPLICE_BUF_CAP); /* client data, in the clear */
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

/* ---------------------------------------------------------------- set-up */

void splice_init(struct splice *sp, enum splice_plain_kind kind)
{
	memset(sp, 0, sizeof(*sp));
	sp->kind = kind;
	sp->plain_fd = -1;
	sp->sealed_fd = -1;
}

void splice_free(struct splice *sp)
{
	buf_free(&sp->to_sealed);
	buf_free(&sp->to_plain);
	buf_free(&sp->rx);
	control_channel_clear(&sp->ch);
}

static void fail(struct splice *sp, const char *why)
{
	if (!sp->failed) {
		sp->failed = true;
		sp->why = why;
	}
}

bool splice_queue_plain(struct splice *sp, const uint8_t *data, size_t len)
{
	uint8_t *t = buf_tail(&sp->to_plain, len);
	if (!t)
		return false;
	memcpy(t, data, len);
	sp->to_plain.len += len;
	return true;
}

bool splice_queue_sealed_raw(struct splice *sp, const uint8_t *data, size_t len)
{
	uint8_t *t = buf_tail(&sp->to_sealed, len);
	if (!t)
		return false;
	memcpy(t, data, len);
	sp->to_sealed.len += len;
	return true;
}

bool splice_queue_sealed(struct splice *sp, enum pubwire_kind kind, const uint8_t *payload, size_t len)
{
	size_t out_len;
	uint8_t *t = buf_tail(&sp->to_sealed, PUBWIRE_MAX_SEALED);

	if (!t)
		return false;
	if (!pubwire_seal(&sp->ch, kind, payload, len, t, PUBWIRE_MAX_SEALED, &out_len)) {
		fail(sp, "cannot seal a frame");
		return false;
	}
	sp->to_sealed.len += out_len;
	return true;
}

bool splice_feed_sealed(struct splice *sp, const uint8_t *data, size_t len)
{
	uint8_t *t = buf_tail(&sp->rx, len);
	if (!t)
		return false;
	memcpy(t, data, len);
	sp->rx.len += len;
	return true;
}

bool splice_push_datagram(struct splice *sp, const uint8_t *data, size_t len)
{
	if (len == 0 || len > PUBWIRE_MAX_DATA || sp->plain_eof || buf_room(&sp->to_sealed) < PUBWIRE_MAX_SEALED ||
	    !splice_queue_sealed(sp, PUBWIRE_DATA, data, len)) {
		sp->dgrams_dropped++;
		return false;
	}
	sp->bytes_up += len;
	sp->moved = true;
	return true;
}

/* ---------------------------------------------------------------- the plain side */

static bool soft_error(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR;
}

static bool read_plain(struct splice *sp)
{
	/* A stream is read up to SPLICE_READ_FRAMES frames' worth per call (one system call
	 * for up to ~64 KiB, then sealed a frame at a time); a datagram one at a time. */
	uint8_t chunk[SPLICE_READ_FRAMES * PUBWIRE_MAX_DATA];
	bool progress = false;
	bool dgram = sp->kind == SPLICE_PLAIN_DGRAM;
	size_t used = 0; /* the most of chunk any read filled: what to wipe */

	if (sp->kind == SPLICE_PLAIN_EXTERNAL || sp->plain_fd < 0 || sp->plain_connecting)
		return false;
	while (!sp->plain_eof && !sp->failed && buf_room(&sp->to_sealed) >= PUBWIRE_MAX_SEALED) {
		size_t frames = buf_room(&sp->to_sealed) / PUBWIRE_MAX_SEALED;
		size_t want = dgram ? PUBWIRE_MAX_DATA : (frames < SPLICE_READ_FRAMES ? frames : SPLICE_READ_FRAMES) * PUBWIRE_MAX_DATA;
		ssize_t n = recv(sp->plain_fd, chunk, want, MSG_DONTWAIT | (dgram ? MSG_TRUNC : 0));
		if (n < 0) {
			if (soft_error(errno))
				break;
			if (dgram) /* an ICMP error for an earlier send */
				continue;
			fail(sp, "the plain side reset");
			break;
		}
		progress = true;
		if ((size_t)n > used)
			used = (size_t)n < sizeof(chunk) ? (size_t)n : sizeof(chunk);
		if (n == 0 && !dgram) {
			sp->plain_eof = true;
			splice_queue_sealed(sp, PUBWIRE_EOF, NULL, 0);
			break;
		}
		if (dgram && (n == 0 || (size_t)n > PUBWIRE_MAX_DATA)) {
			sp->dgrams_dropped++; /* empty, or truncated: larger than a frame carries */
			continue;
		}
		for (size_t off = 0; off < (size_t)n && !sp->failed; off += PUBWIRE_MAX_DATA) {
			size_t len = (size_t)n - off < PUBWIRE_MAX_DATA ? (size_t)n - off : PUBWIRE_MAX_DATA;
			if (!splice_queue_sealed(sp, PUBWIRE_DATA, chunk + off, len))
				fail(sp, "out of memory");
		}
		sp->bytes_up += (uint64_t)n;
		if (!dgram && (size_t)n < want)
			break; /* the socket is empty */
	}
	sodium_memzero(chunk, used);
	sp->moved |= progress;
	return progress;
}

static bool flush_plain(struct splice *sp)
{
	struct splice_buf *b = &sp->to_plain;
	bool progress = false;

	if (sp->plain_connecting || (sp->kind != SPLICE_PLAIN_EXTERNAL && sp->plain_fd < 0))
		return false;
	while (buf_pending(b) > 0 && !sp->failed) {
		const uint8_t *p = b->data + b->off;
		if (sp->kind == SPLICE_PLAIN_STREAM) {
			ssize_t n = send(sp->plain_fd, p, buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0) {
				if (!soft_error(errno))
					fail(sp, "the plain side closed");
				break;
			}
			buf_consumed(b, (size_t)n);
			progress = true;
			continue;
		}
		size_t len = (size_t)p[0] << 8 | p[1];
		if (sp->kind == SPLICE_PLAIN_DGRAM) {
			ssize_t n = send(sp->plain_fd, p + DGRAM_LEN_PREFIX, len, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n < 0)
				sp->dgrams_dropped++; /* nobody listening (ICMP), or too big: UDP loses it */
		} else if (!sp->dgram_out(sp->dgram_ctx, p + DGRAM_LEN_PREFIX, len)) {
			sp->dgrams_dropped++;
		}
		buf_consumed(b, DGRAM_LEN_PREFIX + len);
		progress = true;
	}
	if (buf_pending(b) == 0 && sp->sealed_eof && !sp->plain_shut && sp->kind == SPLICE_PLAIN_STREAM &&
	    sp->plain_fd >= 0) {
		shutdown(sp->plain_fd, SHUT_WR);
		sp->plain_shut = true;
		progress = true;
	}
	sp->moved |= progress;
	return progress;
}

/* ---------------------------------------------------------------- the sealed side */

static bool sealed_may_send(const struct splice *sp)
{
	return sp->sealed_fd >= 0 && !sp->sealed_connecting && (!sp->need_attach || sp->attached);
}

static bool flush_sealed(struct splice *sp)
{
	struct splice_buf *b = &sp->to_sealed;
	bool progress = false;

	if (!sealed_may_send(sp))
		return false;
	while (buf_pending(b) > 0 && !sp->failed) {
		ssize_t n = send(sp->sealed_fd, b->data + b->off, buf_pending(b), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (!soft_error(errno))
				fail(sp, "the work connection closed");
			break;
		}
		buf_consumed(b, (size_t)n);
		progress = true;
	}
	return progress;
}

static bool read_sealed(struct splice *sp)
{
	bool progress = false;

	if (sp->sealed_fd < 0 || sp->sealed_connecting)
		return false;
	while (!sp->sealed_closed && !sp->failed) {
		size_t room = SPLICE_BUF_CAP - buf_pending(&sp->rx);
		uint8_t *t = room ? buf_tail(&sp->rx, room) : NULL;
		if (!t)
			break;
		ssize_t n = recv(sp->sealed_fd, t, room, MSG_DONTWAIT);
		if (n < 0) {
			if (!soft_error(errno))
				fail(sp, "the work connection reset");
			break;
		}
		progress = true;
		if (n == 0) {
			sp->sealed_closed = true;
			break;
		}
		sp->rx.len += (size_t)n;
		if ((size_t)n < room)
			break;
	}
	return progress;
}

/* Whether rx holds a complete frame (or a bad length, which the caller fails on). */
static bool rx_has_frame(const struct splice *sp)
{
	const uint8_t *body;
	size_t body_len, consumed;

	if (buf_pending(&sp->rx) == 0)
		return false;
	return control_frame_next(sp->rx.data + sp->rx.off, buf_pending(&sp->rx), &body, &body_len, &consumed) != 0;
}

/* Opens every complete frame in rx while to_plain can take its payload. */
static bool process_rx(struct splice *sp)
{
	struct splice_buf *b = &sp->rx;
	uint8_t plain[CONTROL_MAX_PLAIN];
	bool progress = false;

	while (!sp->failed && buf_pending(b) > 0) {
		const uint8_t *body, *payload;
		size_t body_len, consumed, plain_len, payload_len;
		enum pubwire_kind kind;
		int r = control_frame_next(b->data + b->off, buf_pending(b), &body, &body_len, &consumed);
		if (r < 0) {
			fail(sp, "a frame of a bad length");
			break;
		}
		if (r == 0)
			break;
		if (buf_room(&sp->to_plain) < DGRAM_LEN_PREFIX + body_len)
			break; /* the plain side is behind: wait for it */
		if (sp->sealed_eof || !control_open(&sp->ch, body, body_len, plain, sizeof(plain), &plain_len) ||
		    !pubwire_frame_parse(plain, plain_len, &kind, &payload, &payload_len)) {
			fail(sp, "a forged or malformed frame");
			break;
		}
		buf_consumed(b, consumed);
		progress = true;
		if (sp->need_attach && !sp->attached) {
			if (kind != PUBWIRE_ATTACH) {
				fail(sp, "no ATTACH first");
				break;
			}
			sp->attached = true;
			continue;
		}
		if (kind == PUBWIRE_ATTACH) {
			fail(sp, "an ATTACH out of place");
			break;
		}
		if (kind == PUBWIRE_EOF) {
			if (sp->kind != SPLICE_PLAIN_STREAM) {
				fail(sp, "EOF on a datagram flow");
				break;
			}
			sp->sealed_eof = true;
			continue;
		}
		if (sp->kind != SPLICE_PLAIN_STREAM) {
			uint8_t pre[DGRAM_LEN_PREFIX] = { (uint8_t)(payload_len >> 8), (uint8_t)payload_len };
			splice_queue_plain(sp, pre, sizeof(pre)); /* room was checked above */
		}
		splice_queue_plain(sp, payload, payload_len);
		sp->bytes_down += payload_len;
	}
	sodium_memzero(plain, sizeof(plain));
	if (sp->sealed_closed && !sp->failed && !sp->sealed_eof && sp->kind == SPLICE_PLAIN_STREAM && !rx_has_frame(sp))
		fail(sp, "the work connection was cut");
	if (sp->sealed_closed && !sp->failed && sp->kind != SPLICE_PLAIN_STREAM && buf_pending(b) == 0)
		fail(sp, "the work connection closed");
	sp->moved |= progress;
	return progress;
}

/* ---------------------------------------------------------------- driving */

void splice_pump(struct splice *sp)
{
	for (int round = 0; round < SPLICE_PUMP_ROUNDS && !sp->failed; round++) {
		bool progress = flush_sealed(sp);
		progress |= process_rx(sp);
		progress |= flush_plain(sp);
		progress |= read_sealed(sp);
		progress |= process_rx(sp);
		progress |= flush_plain(sp);
		progress |= read_plain(sp);
		progress |= flush_sealed(sp);
		if (!progress)
			break;
	}
}

uint32_t splice_plain_events(const struct splice *sp)
{
	uint32_t ev = 0;

	if (sp->kind == SPLICE_PLAIN_EXTERNAL || sp->plain_fd < 0 || sp->failed)
		return 0;
	if (sp->plain_connecting)
		return EPOLLOUT;
	if (!sp->plain_eof && buf_room(&sp->to_sealed) >= PUBWIRE_MAX_SEALED)
		ev |= EPOLLIN;
	if (buf_pending(&sp->to_plain) > 0)
		ev |= EPOLLOUT;
	return ev;
}

uint32_t splice_sealed_events(const struct splice *sp)
{
	uint32_t ev = 0;

	if (sp->sealed_fd < 0 || sp->failed)
		return 0;
	if (sp->sealed_connecting)
		return EPOLLOUT;
	if (!sp->sealed_closed && buf_pending(&sp->rx) < SPLICE_BUF_CAP)
		ev |= EPOLLIN;
	if (buf_pending(&sp->to_sealed) > 0 && sealed_may_send(sp))
		ev |= EPOLLOUT;
	return ev;
}

bool splice_done(const struct splice *sp)
{
	return !sp->failed && sp->kind == SPLICE_PLAIN_STREAM && sp->plain_eof && sp->sealed_eof && sp->plain_shut &&
	       buf_pending(&sp->to_sealed) == 0 && buf_pending(&sp->to_plain) == 0;
}

bool splice_connect_check(struct splice *sp, bool sealed)
{
	int fd = sealed ? sp->sealed_fd : sp->plain_fd;
	bool *connecting = sealed ? &sp->sealed_connecting : &sp->plain_connecting;
	int err = 0;
	socklen_t len = sizeof(err);

	if (fd < 0)
		return false;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return false;
	if (err) {
		fail(sp, sealed ? "cannot connect to the coordinator" : "cannot connect to the local service");
		return false;
	}
	/* No error is not yet "connected": an event meant for an earlier socket that had this
	 * descriptor number can arrive while the connect is still in flight. */
	struct sockaddr_storage peer;
	socklen_t peer_len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0)
		return false;
	*connecting = false;
	return true;
}
