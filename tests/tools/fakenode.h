/* What fakenode's two files share: fakenode.c runs the show (options, the target guard, the
 * run loops and the summary), fakenode_session.c speaks the control protocol on each
 * simulated node's connection. See fakenode.c for what the tool is for. */
#ifndef MESHD_TESTS_FAKENODE_H
#define MESHD_TESTS_FAKENODE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/joinkey.h"

enum {
	/* The scale benchmark goes to 10,000; twice that is room, more is a mistake. */
	FAKENODE_MAX_COUNT = 20000,
	FAKENODE_DEFAULT_TIMEOUT_S = 300,
	FAKENODE_MAX_TIMEOUT_S = 3600,
	/* Handshakes in flight at once: keeps a burst of connects from overflowing the
	 * coordinator's listen backlog (SYN flood) and from timing out behind each other. */
	FAKENODE_DEFAULT_MAX_PENDING = 256,
	/* Under the coordinator's 75 s idle limit with room for two losses, like meshd. */
	FAKENODE_KEEPALIVE_MS = 25000,
	/* Bytes read per call: many frames per syscall during a netmap flood. */
	FAKENODE_READ_CHUNK = 256 * 1024,
	/* A session's own output is tiny (hello, register, endpoints, keepalives). */
	FAKENODE_WBUF = 1024,
	/* Reads per readiness event per connection: fairness between connections. */
	FAKENODE_READS_PER_EVENT = 4,
	FAKENODE_EPOLL_BATCH = 512,
	/* Progress goes to stderr this often: a long benchmark shows it is alive. */
	FAKENODE_PROGRESS_MS = 10000,
	/* Once every netmap is complete, this long without any new PEER counts as "settled"
	 * even if not every node knows every other (then a warning says so). */
	FAKENODE_SETTLE_MS = 5000,
	/* How long a --raw / --half-open connection waits for the coordinator to end it. */
	FAKENODE_DEFAULT_RAW_WAIT_S = 20,
	FAKENODE_MAX_RAW_FILE = 65536,
	/* Files and stdio on top of the connections. */
	FAKENODE_SPARE_FDS = 64,
};

enum node_state {
	NODE_IDLE = 0,     /* not started yet */
	NODE_CONNECTING,   /* TCP connect in progress */
	NODE_HELLO_SENT,   /* frame 1 sent, waiting for the welcome */
	NODE_REGISTERING,  /* REGISTER sent, waiting for REGISTERED */
	NODE_NETMAP,       /* registered, receiving the full map */
	NODE_READY,        /* map complete: holding the session */
	NODE_DONE,         /* ended (failed, or closed after registration) */
};

struct node {
	int fd;
	enum node_state state;
	bool registered;
	bool failed;
	bool saw_propagation;
	bool converged;         /* knows every other fake node */
	bool closed_by_server;  /* EOF or reset from the coordinator (not our own close) */
	uint8_t private_key[WIRE_KEY_LEN];
	uint8_t public_key[WIRE_KEY_LEN];
	struct control_channel ch;
	uint64_t t_connect_ms;
	uint64_t t_registered_ms;
	uint64_t t_netmap_ms;
	uint64_t t_last_tx_ms;
	uint64_t t_closed_ms;
	uint32_t peers_known;   /* distinct other fake nodes this one has heard of */
	uint32_t rx_bytes;      /* raw modes: what the coordinator sent back (capped) */
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	/* A partial frame carried over between reads (at most one frame minus a byte). */
	uint8_t *carry;
	size_t carry_len;
	uint8_t wbuf[FAKENODE_WBUF];
	size_t wlen;
	bool want_out;
};

/* What REGISTER carries as the join secret: the real one, or the two ways to be refused. */
enum secret_mode {
	SECRET_KEY = 0, /* the join key's secret */
	SECRET_NONE,    /* empty: an unknown node must be refused (need a join key) */
	SECRET_WRONG,   /* random: refused as an unknown join key */
};

struct options {
	const char *join;
	const char *join_file;
	const char *connect_to;
	long count;
	long hold_s;
	long connect_rate;
	long max_pending;
	long timeout_s;
	long raw_wait_s;
	long storm_s;       /* --endpoint-storm: seconds node 0 floods once its map is complete */
	long storm_records; /* records per storm frame */
	bool storm_keepalive; /* every other storm record a KEEPALIVE */
	bool raw_hangup;      /* --raw: close as soon as the coordinator answers */
	bool spread_sources;  /* each node from its own 127.x source (coordinator benchmarks) */
	bool measure_propagation;
	bool bad_key;
	bool print_registered;
	bool half_open;
	bool forge;
	bool quiet;
	enum secret_mode secret;
	const char *dump_hello;
	const char *raw_file;
	const char *hostname_prefix;
};

/* Why sessions ended: the summary on stderr says which, so a failing test shows the cause. */
enum fail_reason {
	FAIL_CONNECT = 0,
	FAIL_CLOSED_BEFORE_WELCOME,
	FAIL_BAD_WELCOME,
	FAIL_CLOSED_BEFORE_REGISTERED,
	FAIL_ERROR_MESSAGE,
	FAIL_DECRYPT,
	FAIL_MALFORMED,
	FAIL_BAD_FRAME,
	FAIL_SEND,
	FAIL_TIMEOUT,
	FAIL_CLOSED_AFTER_REGISTERED,
	FAIL_REASON_COUNT,
};

struct run {
	struct options opt;
	struct joinkey jk;
	uint8_t coord_public[WIRE_KEY_LEN];
	struct sockaddr_storage target;
	socklen_t target_len;
	char target_text[64];
	int epfd;
	struct node *nodes;
	size_t n;
	/* key -> node index, open addressing: PEER messages name nodes by key */
	int32_t *key_index;
	size_t key_index_mask;
	/* bit (i, j): node i has heard of node j */
	uint64_t *known;
	size_t known_words;
	uint64_t t_start_ms;
	uint64_t t_deadline_ms;
	uint64_t t_last_registered_ms;
	uint64_t t_last_peer_ms;
	uint64_t t_all_netmaps_ms;
	uint64_t t_converged_ms;
	uint64_t t_prop_sent_ms;
	uint64_t t_prop_done_ms;
	uint64_t next_progress_ms;
	uint64_t next_keepalive_check_ms;
	size_t next_start;
	size_t pending;
	size_t started;
	size_t registered;
	size_t netmaps;
	size_t ready;         /* sessions in NODE_READY now */
	size_t converged;
	size_t failed;
	size_t closed_after_registration;
	size_t prop_seen;
	size_t foreign_peers; /* PEER messages about nodes that are not ours */
	uint64_t frames_in;
	uint64_t peer_msgs;
	size_t fail_counts[FAIL_REASON_COUNT];
	size_t error_codes[CONTROL_ERR_INTERNAL + 2];
	char last_error_text[CONTROL_MESSAGE_TEXT_MAX + 1];
	struct control_endpoint prop_endpoint;
	bool prop_sent;
	/* --endpoint-storm: node 0's frames, sealed one at a time; [storm_off, storm_len) is
	 * the part of the current frame the socket has not taken yet. */
	uint8_t storm_buf[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t storm_off, storm_len;
	uint64_t storm_end_ms;
	uint64_t storm_frames, storm_records_sent;
	bool storm_started, storm_done;
	uint16_t storm_port;
	uint64_t netmap_max_ms;
	uint8_t *rbuf;
	FILE *registered_out;
};

/* Set by SIGINT and SIGTERM (and a failed --dump-hello): the run ends at the next turn. */
extern volatile sig_atomic_t fakenode_stop_requested;

uint64_t fakenode_now_ms(void);

/* ---------------------------------------------------------------- fakenode_session.c */

/* Builds the key -> node index PEER messages are accounted through. */
bool fakenode_index_keys(struct run *r);
/* Opens nd's connection; raw (raw_len bytes, may be 0) is queued to go out once it is up. */
void fakenode_start(struct run *r, struct node *nd, const uint8_t *raw, size_t raw_len);
/* nd's socket is ready (epoll events). */
void fakenode_event(struct run *r, struct node *nd, uint32_t events);
void fakenode_close(struct run *r, struct node *nd);
/* Ends nd for a reason, counted in the summary (as "closed after REGISTERED" if it was). */
void fakenode_fail(struct run *r, struct node *nd, enum fail_reason why);
/* KEEPALIVE on every session that is due one (scans at most once a second). */
void fakenode_send_keepalives(struct run *r, uint64_t now);
/* Node 0 announces a new endpoint; every other live node must hear of it. */
void fakenode_propagation_start(struct run *r);
/* --endpoint-storm: node 0 sends frames packed with ENDPOINTS records (alternating two
 * lists) as fast as its socket takes them. True while the storm is on (poll, do not sleep). */
bool fakenode_storm(struct run *r, uint64_t now);

#endif
