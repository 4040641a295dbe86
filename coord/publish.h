/* Publishing a node's service on the coordinator's public address (issue 11, frp-style).
 *
 *   publish.c    what is published: the nodes' requests (PUBLISH), the grants in the
 *                registry, the listeners they open, the states told to nodes, the status
 *                file `meshcoord publish list` reads
 *   pubstream.c  one client connection (TCP) or flow (UDP): STREAM_OPEN to the node, the
 *                node's work connection adopted from the control listener, and the pump
 *                (core/splice.h) between them
 *
 * A service is open while its node is online, asks for it, holds a grant for its protocol
 * and port, and the port is inside the configured range; any of those ending closes the
 * listener and every stream of it at once (clients see a reset). Streams are independent
 * TCP connections end to end, so one slow client holds up nobody.
 *
 * Included by server_internal.h after struct source: not on its own. */
#ifndef MESHCOORD_PUBLISH_H
#define MESHCOORD_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/splice.h"

struct coord_server;
struct conn;

enum {
	/* A client waits this long for its node's work connection; after it, the stream is
	 * closed (the node is overloaded, or its local service does not answer). */
	PUBLISH_ATTACH_TIMEOUT_MS = 10000,
	/* Connections accepted (or datagrams read) per listener and wake-up. */
	PUBLISH_ACCEPT_BATCH = 64,
	/* The status file is rewritten at most this often when something changed, and at
	 * least this often anyway, so a reader can tell a live file from one a stopped or
	 * crashed server left (PUBLISH_STATUS_STALE_S in coordconf.h). */
	PUBLISH_STATUS_INTERVAL_MS = 1000,
	PUBLISH_STATUS_REFRESH_MS = 5000,
	PUBLISH_LISTEN_BACKLOG = 512,
	/* Grants held in memory: far more than ports anyone configures. */
	PUBLISH_MAX_GRANTS = 65536,
};
/* A stream id's low half: its slot in the server's table (pubstream.c). */
#define PUBLISH_SLOT_MASK UINT64_C(0xffffffff)

struct pub_service;

/* One client connection (TCP) or flow (UDP). */
struct pub_stream {
	struct source client_src; /* first: SOURCE_PUB_CLIENT, the client's socket (TCP) */
	struct source work_src;   /* SOURCE_PUB_WORK, the node's work connection once adopted */
	uint32_t client_events, work_events; /* as registered with epoll */
	struct pub_service *svc;
	struct pub_stream *prev, *next; /* the service's streams */
	struct pub_stream *dead_next;
	uint64_t id;
	union peer_addr client;
	socklen_t client_len;
	uint64_t created_ms, active_ms;
	bool dead;
	struct splice sp;
};

/* One published service: its listener (TCP) or socket (UDP) and its streams. */
struct pub_service {
	struct source src; /* first: SOURCE_PUB_LISTEN or SOURCE_PUB_UDP */
	uint8_t node_key[WIRE_KEY_LEN];
	char node_name[CONTROL_NAME_MAX + 1];
	struct control_service svc;
	struct pub_stream *streams;
	size_t active;
	uint64_t total, refused, bytes_up, bytes_down; /* bytes of closed streams */
	bool dead;
	bool paused; /* out of descriptors: not listening until the next tick */
	struct pub_service *next, *dead_next;
};

/* One online node's request (its last PUBLISH) and the states it was told. */
struct pub_node {
	uint8_t node_key[WIRE_KEY_LEN];
	char name[CONTROL_NAME_MAX + 1];
	struct control_publish req;
	uint8_t told[CONTROL_MAX_PUBLISH]; /* the state last sent per request; 0: none */
	struct pub_node *next;
};

struct pub_state {
	struct pub_node *nodes;
	struct pub_service *services;
	struct pub_service *dead_services;
	struct pub_stream *dead_streams;
	struct db_publish_grant *grants;
	size_t n_grants;
	struct pub_stream **slots; /* stream id's low half -> stream (NULL: free) */
	uint32_t *free_slots;      /* free slots, reused last in first out */
	size_t n_slots, n_free, slots_cap;
	bool status_dirty;
	uint64_t status_written_ms;
	uint64_t streams_opened, streams_refused_limit, streams_refused_busy, streams_attach_timeouts, streams_idle_timeouts,
		streams_failed, work_unknown, bytes_up, bytes_down; /* for metrics */
};

/* publish.c */
bool publish_open(struct coord_server *s);
void publish_close(struct coord_server *s);
void publish_on_message(struct coord_server *s, struct conn *c, const struct control_publish *req);
void publish_node_offline(struct coord_server *s, const uint8_t node_key[WIRE_KEY_LEN]);
void publish_grants_reload(struct coord_server *s);
void publish_tick(struct coord_server *s, uint64_t now_ms);
/* Frees what was killed in this batch: only with no event in hand. */
void publish_reap(struct coord_server *s);
void publish_close_service(struct coord_server *s, struct pub_service *svc);

/* pubstream.c */
void pubstream_on_listener(struct coord_server *s, struct pub_service *svc, uint64_t now_ms);
void pubstream_on_udp(struct coord_server *s, struct pub_service *svc, uint64_t now_ms);
void pubstream_on_event(struct coord_server *s, struct source *src, uint32_t events, uint64_t now_ms);
/* A control-port connection whose first frame is a work connection's preamble: the stream
 * named by it takes the descriptor (and rest[0..rest_len), bytes read after the preamble),
 * or the connection is refused. c is dead afterwards either way. */
void pubstream_adopt_work(struct coord_server *s, struct conn *c, const uint8_t *body, size_t body_len,
			  const uint8_t *rest, size_t rest_len);
void pubstream_on_refuse(struct coord_server *s, struct conn *c, uint64_t stream_id);
void pubstream_kill(struct coord_server *s, struct pub_stream *st, bool abort);
void pubstream_tick(struct coord_server *s, struct pub_service *svc, uint64_t now_ms);

#endif
