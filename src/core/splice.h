/* One published stream's pump (issue 11): bytes between a plain side (the client's socket on
 * the coordinator, the local service's on the node) and a sealed side (the work connection,
 * core/pubwire.h), used the same way by meshcoord and meshd.
 *
 * Non-blocking throughout, for one epoll loop. Each direction has a bounded buffer; a side is
 * read only while the buffer toward the other side has room for what one read can make (a
 * sealed frame, or an opened payload), so a slow reader stops its writer by TCP's own flow
 * control and one stream's backlog never touches another's: backpressure without threads.
 *
 * The plain side is a TCP socket (bytes; end of stream = half-close), a connected UDP socket
 * (the node's per-flow socket: one datagram per DATA frame), or external (the coordinator's
 * shared UDP socket: datagrams come in through splice_push_datagram and go out through the
 * dgram_out callback). */
#ifndef MESHD_SPLICE_H
#define MESHD_SPLICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "pubwire.h"

enum {
	/* Per direction and stream: ~16 full frames, a few ms of a fast link between two
	 * wake-ups; 100 streams hold ~20 MB at most. Below glibc's mmap threshold (128 KiB), so
	 * allocating one is cheap. */
	SPLICE_BUF_CAP = 64 * 1024,
	/* Frames' worth read from a stream's plain side in one system call (~64 KiB): one
	 * recv per 4 KiB frame cost a fifth of the throughput (contrib/bench/publish.sh). */
	SPLICE_READ_FRAMES = 16,
};

enum splice_plain_kind {
	SPLICE_PLAIN_STREAM,   /* TCP socket */
	SPLICE_PLAIN_DGRAM,    /* connected UDP socket */
	SPLICE_PLAIN_EXTERNAL, /* no descriptor: splice_push_datagram and dgram_out */
};

struct splice_buf {
	uint8_t *data; /* SPLICE_BUF_CAP bytes once used; [off, len) waits */
	size_t off, len;
};

struct splice {
	enum splice_plain_kind kind;
	int plain_fd;  /* -1: external, or not open yet */
	int sealed_fd; /* -1: not attached yet */
	bool plain_connecting, sealed_connecting; /* non-blocking connect in flight */
	bool need_attach;   /* coordinator: the sealed side's first frame must be ATTACH */
	bool attached;      /* ATTACH received (coordinator) */
	struct control_channel ch;
	struct splice_buf to_sealed; /* sealed frames for the work connection */
	struct splice_buf to_plain;  /* stream bytes, or datagrams as 2-byte length + bytes */
	struct splice_buf rx;        /* from the work connection: frames not yet opened */
	bool plain_eof;   /* the plain side ended (EOF queued toward the sealed side) */
	bool sealed_eof;  /* the sealed side said EOF */
	bool sealed_closed; /* the work connection reached end of file */
	bool plain_shut;  /* plain side half-closed after sealed_eof */
	bool failed;      /* cut, forged or broken: the owner aborts the stream */
	const char *why;  /* for the log when failed */
	bool (*dgram_out)(void *ctx, const uint8_t *data, size_t len); /* external: send one */
	void *dgram_ctx;
	uint64_t bytes_up;   /* plain -> sealed payload bytes */
	uint64_t bytes_down; /* sealed -> plain payload bytes */
	uint64_t dgrams_dropped; /* datagrams dropped: too big, or a full buffer */
	bool moved;          /* the last pump moved something (for idle timeouts) */
};

/* Zeroes sp and sets its kind; descriptors -1. The channel is set up by the caller
 * (pubwire_channel_init). */
void splice_init(struct splice *sp, enum splice_plain_kind kind);
/* Frees the buffers, wipes the keys; closes no descriptor (they are the owner's). */
void splice_free(struct splice *sp);

/* Queues bytes for the plain side ahead of anything else (the PROXY header). */
bool splice_queue_plain(struct splice *sp, const uint8_t *data, size_t len);
/* Queues bytes for the work connection as they are (the node's preamble, before any frame). */
bool splice_queue_sealed_raw(struct splice *sp, const uint8_t *data, size_t len);
/* Seals one frame toward the work connection (ATTACH, EOF, or a DATA datagram). */
bool splice_queue_sealed(struct splice *sp, enum pubwire_kind kind, const uint8_t *payload, size_t len);
/* Bytes read from the work connection before the splice took it (after the preamble). */
bool splice_feed_sealed(struct splice *sp, const uint8_t *data, size_t len);
/* External plain side: one datagram from the client; false (counted) if dropped. */
bool splice_push_datagram(struct splice *sp, const uint8_t *data, size_t len);

/* Does all the non-blocking work there is: reads, opens, writes, half-closes. Sets failed
 * on any error. Call after any event on either descriptor. */
void splice_pump(struct splice *sp);
/* The epoll events each side needs now (0: none; the descriptor may stay registered). */
uint32_t splice_plain_events(const struct splice *sp);
uint32_t splice_sealed_events(const struct splice *sp);
/* Both directions ended cleanly and everything was written: close both sides. */
bool splice_done(const struct splice *sp);
/* Checks a connect in flight after EPOLLOUT: true when it completed, false (failed set) on
 * error; a connect still going leaves *connecting set. */
bool splice_connect_check(struct splice *sp, bool sealed);

#endif
