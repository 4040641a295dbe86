/* What the server's files share and nothing else sees:
 *
 *   server.c     the epoll loop, the listener, signals, the 250 ms tick, setup and teardown
 *   conn.c       one node connection: reading and framing, the write queue, packing the
 *                peer map into frames, and the connection's life and death
 *   dispatch.c   what a connection says: the hello, REGISTER, ENDPOINTS, KEEPALIVE
 *   nodemap.c    the in-memory node table: hash, change-ordered list, sessions' cursors into
 *                it, tombstones, and following the registry's commits
 *   stunserver.c the STUN sockets (main and alternate port), which also carry relay frames
 *   relay.c      the relay: per-session tokens, BINDs, and forwarding DATA between nodes
 *                (addrmap.c maps source addresses to nodes, ratelimit.c limits each node)
 *
 * Single-threaded: nothing here is locked. */
#ifndef MESHCOORD_SERVER_INTERNAL_H
#define MESHCOORD_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "coord/addrmap.h"
#include "coord/admin.h"
#include "coord/policy.h"
#include "core/ratelimit.h"
#include "coord/server.h"
#include "core/srclimit.h"
#include "core/clock.h"
#include "core/control.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/relay.h"

enum {
	/* Each connection costs a file descriptor and ~1 KiB here plus the kernel's socket;
	 * 60,000 leaves room under a typical 64 Ki descriptor limit and is far above the
	 * 10,000 nodes we aim to serve. Beyond it new connections are accepted and closed. */
	SERVER_MAX_CONNECTIONS = 60000,
	/* Below this many descriptors even a network of a few thousand nodes hits the limit:
	 * worth a warning at start. Above it, the limit is only information. */
	SERVER_FD_LIMIT_WARN = 4096,
	/* A node needs one round trip for hello and REGISTER; anything slower is a half-open or
	 * stalled connection holding a slot. */
	SERVER_HANDSHAKE_TIMEOUT_MS = 10000,
	/* A refused node gets this long to read its error. Equal to the handshake timeout so the
	 * list both share stays sorted by deadline. */
	SERVER_LINGER_MS = SERVER_HANDSHAKE_TIMEOUT_MS,
	/* How often a node sends KEEPALIVE (meshd's choice, under NAT mapping timeouts). */
	SERVER_NODE_KEEPALIVE_MS = 25000,
	/* Three missed keepalives: the node or its path is gone. */
	SERVER_IDLE_TIMEOUT_MS = 3 * SERVER_NODE_KEEPALIVE_MS,
	/* Admin commits (node removed) reach nodes within a second; the tick also checks
	 * deadlines. Four wake-ups a second cost nothing measurable when idle. */
	SERVER_TICK_MS = 250,
	/* last_seen is written at most once per node per interval, however chatty the node.
	 * With keepalives every 25 s that is one small commit per keepalive (400 a second for
	 * 10,000 nodes, about 1% of a core here). Longer would save writes, but "nodes list"
	 * calls a node online while last_seen is within ADMIN_ONLINE_WINDOW_S. */
	SERVER_TOUCH_INTERVAL_MS = 20000,
	/* How often meshd re-BINDs its relay address (RELAYCLIENT_BIND_INTERVAL_MS). */
	SERVER_NODE_BIND_INTERVAL_MS = 15000,
	/* Per connection: one unsent batch, the odd control message, and relayed datagrams for a
	 * node whose UDP is blocked (half of it, SERVER_RELAY_QUEUE_MAX: ~20 ms of a 100 Mbit/s
	 * relay; at 64 KiB a relayed TCP transfer lost a packet in ten to this queue). Peer
	 * updates never pile up here (the cursor holds a lagging session's place), so only a
	 * node that keeps talking without reading can fill it; it is disconnected. The buffer
	 * grows on demand: an idle connection does not hold it. */
	SERVER_WRITE_QUEUE_MAX = 512 * 1024,
	/* Peer records are sealed into full frames, and frames gathered into batches of this
	 * much, one send() each. What the socket does not take waits in the connection's queue:
	 * the most a lagging session holds. */
	SERVER_SEND_BATCH = 16 * 1024,
	/* Bytes one connection may send per wake-up before others get a turn. */
	SERVER_FLUSH_BUDGET = 1024 * 1024,
	/* One read per wake-up into a shared buffer: enough for many frames at once. */
	SERVER_READ_SCRATCH = 64 * 1024,
	/* A partial frame kept between reads: one full frame at most. */
	SERVER_PARTIAL_CAP = CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME,
	/* Work per wake-up for each source, so one busy source cannot starve the rest. */
	SERVER_ACCEPT_BATCH = 256,
	SERVER_READS_PER_WAKE = 4,
	SERVER_STUN_BATCH = 64,
	SERVER_EPOLL_EVENTS = 256,
	/* The kernel caps it at net.core.somaxconn; 10,000 nodes reconnecting at once after a
	 * coordinator restart should not overflow a small default. */
	SERVER_LISTEN_BACKLOG = 4096,
	/* Bigger than any STUN message we answer and any relay frame we forward, so an
	 * oversized datagram is seen as such. */
	SERVER_STUN_RECV_MAX = 4096,
	/* The STUN socket also carries relayed traffic (up to 100 Mbit/s per node by default):
	 * kernel buffers for bursts between two wake-ups. Best effort (capped by rmem_max). */
	SERVER_STUN_SOCKBUF = 4 * 1024 * 1024,
	/* Relay frames over TCP are dropped, not queued, once the destination's write queue is
	 * above this: relayed traffic must never get a node closed as a slow reader, and the
	 * map and control messages keep the other half. */
	SERVER_RELAY_QUEUE_MAX = SERVER_WRITE_QUEUE_MAX / 2,
	SERVER_INITIAL_TABLE_SLOTS = 64,
	ADDR_STR_MAX = 64,

	/* Bounds on what one registered node can make us do (issue 8, finding 2). */
	/* meshd seals each message it sends as a frame of its own; 32 records leave room for a
	 * sender that packs small relayed packets, and cap what one 4 KiB frame can ask for. */
	SERVER_MAX_RECORDS_PER_FRAME = 32,
	/* A node's endpoint changes cost a commit and a push to every session: applied at most
	 * once per node per interval, later ones coalesced (the latest wins), so a roaming node's
	 * new address still reaches its peers within about a second. */
	SERVER_ENDPOINT_INTERVAL_MS = 1000,
	/* A node says its routes once per connection and on SIGHUP: more than one a second is
	 * a burst (reloads in a row) or a broken node making the registry write; the last one
	 * of a burst is applied when the second is over, the ones between are never written. */
	SERVER_ROUTES_INTERVAL_MS = 1000,
	/* Other nodes' approved routes looked at when auto-approving (a few routers each with
	 * a few LANs; past this, auto approval checks only the first ones). */
	SERVER_ROUTES_TAKEN_MAX = 4096,
	/* Candidates kept per node: its interfaces plus the reflexive one (meshd lists it last,
	 * and it is kept); more only lengthens every peer's probe list. */
	SERVER_MAX_ENDPOINTS_PER_NODE = 8,

	/* Bounds on what a stranger can make us do before it is authenticated (finding 3). */
	/* Sources tracked at once (~48 bytes each): far more than the addresses that handshake
	 * within a few seconds, even while 10,000 nodes reconnect. */
	SERVER_SRC_TABLE_ENTRIES = 16384,
	/* Connections one source may hold open before registering (each holds a slot up to
	 * SERVER_HANDSHAKE_TIMEOUT_MS): a NAT hiding many nodes that reconnect together still
	 * gets dozens through at once. */
	SERVER_SRC_HELD_MAX = 64,
	/* Hellos one source may have us read: ~5 X25519 each, so 100 a second cost one source
	 * a few percent of a core at most, and a NAT hiding a thousand nodes that reconnect
	 * after a coordinator restart gets them all in within ten seconds. */
	SERVER_SRC_HELLO_RATE = 100,
	SERVER_SRC_HELLO_BURST = 200,
	/* A hello whose timestamp is older than this is refused after reading it (two X25519)
	 * and before answering it (three more): a captured hello stops working after ten
	 * minutes. Nodes' clocks must be within this of ours (behind; ahead is fine). */
	SERVER_HELLO_MAX_AGE_S = 600,
	/* STUN answers are 3-4x the request and the source may be spoofed: per source address
	 * at most this many a second (meshd asks every ~25 s and on address changes; a NAT with
	 * a few hundred nodes behind it stays under it), so a victim gets at most ~5 KB/s. */
	SERVER_STUN_SRC_RATE = 50,
	SERVER_STUN_SRC_BURST = 100,
	SERVER_STUN_TABLE_ENTRIES = 16384,
	/* Sources the STUN table has no room for (a flood from spoofed random addresses) share
	 * one bucket: the answers to all of them together stay under this rate. */
	SERVER_STUN_OVERFLOW_RATE = 1000,
	SERVER_STUN_OVERFLOW_BURST = 1000,
};

_Static_assert(SERVER_SEND_BATCH + SERVER_PARTIAL_CAP < SERVER_WRITE_QUEUE_MAX,
	       "an unsent batch leaves room for control messages");
_Static_assert(SERVER_SEND_BATCH >= 2 * SERVER_PARTIAL_CAP, "a batch holds several frames");
_Static_assert((int)SERVER_STUN_RECV_MAX > (int)RELAY_MAX_FRAME, "a relay frame fits the receive buffer");
_Static_assert(SERVER_RELAY_QUEUE_MAX + SERVER_PARTIAL_CAP < SERVER_WRITE_QUEUE_MAX,
	       "a relay frame queued just under the relay bound never closes the session");
_Static_assert(SERVER_READ_SCRATCH >= SERVER_PARTIAL_CAP, "a read can complete any frame");
/* A node's whole rule set is queued at once (policy_push.c), one frame a part. */
_Static_assert(CONTROL_FILTER_MAX_PARTS * SERVER_PARTIAL_CAP + SERVER_SEND_BATCH < SERVER_WRITE_QUEUE_MAX,
	       "a full FILTER set (a frame a part) fits the write queue next to an unsent batch");
_Static_assert(SERVER_TOUCH_INTERVAL_MS + SERVER_NODE_KEEPALIVE_MS < ADMIN_ONLINE_WINDOW_S * 1000,
	       "a live node's last_seen stays inside the admin's online window");

/* Every bad input is counted; SIGUSR1 prints these. Each counter that goes with a log line
 * also has its own log limiter, so a flood of one kind cannot hide the first lines of the
 * next. */
#define SERVER_COUNTERS(X)                                                                     \
	X(conns_accepted, "TCP connections accepted") \
	X(conns_refused_limit, "closed at once: SERVER_MAX_CONNECTIONS reached") \
	X(accept_errors, "accept4 failed (descriptor limit, memory)") \
	X(hello_invalid, "first frame not a valid hello to our key: garbage, other key") \
	X(hello_replayed, "hello timestamp not newer than that node's last accepted") \
	X(hello_stale, "hello timestamp older than SERVER_HELLO_MAX_AGE_S") \
	X(hello_rate_limited, "over SERVER_SRC_HELLO_RATE for its source: closed unread") \
	X(conns_refused_source, "its source holds SERVER_SRC_HELD_MAX unregistered, or the source table is full of busy sources: closed at once") \
	X(frames_bad_length, "frame length 0 or above CONTROL_MAX_FRAME") \
	X(frames_forged, "transport frame failed authentication") \
	X(records_malformed, "frame of no record, a zero-length one or one past its end") \
	X(msgs_malformed, "known message type that does not parse") \
	X(msgs_unknown, "unknown message type, skipped") \
	X(msgs_unexpected, "valid message out of place (e.g. PEER from a node)") \
	X(routes_updates, "ROUTES messages applied (a node's advertised routes changed)") \
	X(routes_deferred, "ROUTES messages held back: sooner than SERVER_ROUTES_INTERVAL_MS after the last") \
	X(routes_auto_approved, "advertised routes approved by an auto_approve_routes rule") \
	X(routes_auto_refused, "auto approval refused: the route collides with the overlay or another node's") \
	X(handshake_timeouts, "no hello + REGISTER within SERVER_HANDSHAKE_TIMEOUT_MS") \
	X(closed_unregistered, "closed by the other side before registering") \
	X(idle_timeouts, "registered session silent for SERVER_IDLE_TIMEOUT_MS") \
	X(slow_readers, "queue above SERVER_WRITE_QUEUE_MAX (not reading): closed") \
	X(registrations, "REGISTER accepted (new or returning node)") \
	X(nodes_created, "of which new nodes") \
	X(registrations_refused, "REGISTER refused: join key or removed node") \
	X(sessions_replaced, "older session of a node closed by its newer one") \
	X(nodes_removed, "removals seen in the registry and pushed") \
	X(endpoint_updates, "ENDPOINTS messages applied") \
	X(endpoint_coalesced, "ENDPOINTS held back (SERVER_ENDPOINT_INTERVAL_MS) or replaced by a later one before being applied") \
	X(endpoints_refused, "candidates dropped: not dialable (core/endpoint_check.h)") \
	X(endpoints_over_cap, "candidates dropped: beyond SERVER_MAX_ENDPOINTS_PER_NODE") \
	X(frames_over_records, "frame of more than SERVER_MAX_RECORDS_PER_FRAME: closed") \
	X(keepalives_coalesced, "KEEPALIVEs after the first in a frame: not answered") \
	X(peer_msgs_sent, "PEER and PEER_REMOVE messages sent (maps and deltas)") \
	X(peer_deltas_sent, "of peer_msgs_sent, those sent after the session's full map (changes)") \
	X(control_frames_received, "authenticated control frames received from nodes") \
	X(control_frames_sent, "control frames sealed and queued to nodes") \
	X(db_errors, "registry writes or reads that failed") \
	X(msgs_unencodable, "map records we could not encode (bad stored data): skipped") \
	X(filter_sets_sent, "access rule sets (FILTER messages) sent to nodes") \
	X(policy_errors, "policy file reloads refused: parse error or too many rules") \
	X(stun_requests, "Binding requests answered") \
	X(stun_dropped, "datagrams on the STUN port that were not Binding requests") \
	X(stun_alt_requests, "of stun_requests, those on the alternate port") \
	X(stun_rate_limited, "Binding requests not answered: over the source's rate") \
	X(relay_binds, "BINDs accepted (source address bound, ACK sent)") \
	X(relay_malformed, "BIND or DATA of the wrong size or header") \
	X(relay_bind_unknown, "BIND for a node that is unknown or has no live session") \
	X(relay_bind_bad_mac, "BIND whose mac fails under that node's token") \
	X(relay_bind_replayed, "BIND counter not above the last accepted: nothing bound") \
	X(relay_unbound_source, "DATA from a source bound to no live session: dropped") \
	X(relay_dest_unknown, "DATA or RELAY for a key not registered (or removed)") \
	X(relay_dest_offline, "DATA or RELAY for a registered node with no session") \
	X(relay_rate_limited, "over the sender's relay_rate_limit: dropped") \
	X(relay_queue_full, "destination's TCP queue above SERVER_RELAY_QUEUE_MAX") \
	X(relay_send_errors, "sendto() to a bound address failed (buffer full, ICMP)") \
	X(relay_udp_frames, "frames forwarded to a UDP binding") \
	X(relay_tcp_frames, "frames forwarded over a TCP session") \
	X(relay_bytes, "payload bytes forwarded, either way") \
	X(relay_rx_udp_frames, "DATA frames received over UDP from a bound node, to forward") \
	X(relay_rx_tcp_frames, "RELAY messages received over a TCP session, to forward") \
	X(relay_rx_bytes, "payload bytes received to forward (before the checks that drop some)") \
	X(metrics_requests, "HTTP requests answered on metrics_listen (any status)") \
	X(metrics_refused, "metrics connections closed at once: METRICS_MAX_CONNECTIONS open") \
	X(metrics_timeouts, "metrics connections closed: no full request or answer in METRICS_TIMEOUT_MS")

struct server_counters {
#define SERVER_COUNTER_FIELD(name, help) uint64_t name;
	SERVER_COUNTERS(SERVER_COUNTER_FIELD)
#undef SERVER_COUNTER_FIELD
};

/* One log limiter per counter (most never log; they cost 24 bytes each). */
struct server_limiters {
#define SERVER_LIMITER_FIELD(name, help) struct log_ratelimit name;
	SERVER_COUNTERS(SERVER_LIMITER_FIELD)
#undef SERVER_LIMITER_FIELD
};

/* Counts one event of kind `name` and logs a warning about it, rate-limited per kind. */
#define SERVER_COUNT_LOG(s, name, ...)                                                         \
	do {                                                                                   \
		unsigned int suppressed_;                                                      \
		(s)->counters.name++;                                                          \
		if (log_ratelimit_allow(&(s)->limiters.name, clock_monotonic_ms(), &suppressed_)) { \
			if (suppressed_)                                                       \
				log_warn("(%u more %s were not logged)", suppressed_, #name);  \
			log_warn(__VA_ARGS__);                                                 \
		}                                                                              \
	} while (0)

/* What an epoll event points at: the first member of every source. */
enum source_kind {
	SOURCE_LISTENER,
	SOURCE_STUN,
	SOURCE_STUN_ALT,
	SOURCE_SIGNAL,
	SOURCE_TIMER,
	SOURCE_CONN,
	SOURCE_METRICS,      /* the metrics listener (metrics_http.c) */
	SOURCE_METRICS_CONN, /* one scraper's connection */
	SOURCE_PUB_LISTEN,   /* a published TCP port (publish.c) */
	SOURCE_PUB_UDP,      /* a published UDP port */
	SOURCE_PUB_CLIENT,   /* a client's connection on a published port (pubstream.c) */
	SOURCE_PUB_WORK,     /* a node's work connection for one stream */
};

struct source {
	enum source_kind kind;
	int fd;
};

enum conn_state {
	CONN_HELLO,    /* waiting for frame 1 */
	CONN_REGISTER, /* channel up, waiting for REGISTER */
	CONN_ACTIVE,   /* registered: receives the map and deltas */
	CONN_CLOSING,  /* flushing a final ERROR, then closing; input is discarded */
};

struct node_entry;

union peer_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

#include "coord/publish.h"

struct conn {
	struct source src; /* first: epoll hands it back */
	enum conn_state state;
	bool dead;        /* marked for reaping; ignore all events */
	bool in_flush;    /* on the flush list */
	bool want_out;    /* EPOLLOUT currently requested */
	bool shut_wr;     /* CLOSING: our side already shut down */
	bool map_done;    /* ACTIVE: NETMAP_END sent */
	bool src_held;    /* counted in its source's srclimit entry (until registered) */
	/* On the short list (HELLO, REGISTER, CLOSING; sorted by deadline) or the active list
	 * (ACTIVE; least recently heard first). */
	struct conn *prev, *next;
	struct conn *flush_next, *dead_next;
	uint64_t deadline_ms;  /* short list: when to give up; active list: last frame seen */
	union peer_addr addr;
	struct control_channel ch;
	uint8_t hello_timestamp[WIRE_TIMESTAMP_LEN];
	struct node_entry *node;   /* ACTIVE: its node, whose session this is */
	struct node_entry *cursor; /* ACTIVE: next change to send; NULL: caught up */
	bool cursor_routes;        /* the cursor's PEER went out: its PEER_ROUTES is next */
	bool cursor_sats;          /* and then its PEER_SATELLITES (satellites.c) */
	uint64_t sent_version;     /* every change up to this version was sent (or skipped) */
	uint64_t start_version;    /* the table's version when the session began: removals up
				    * to it are no news to this node */
	uint8_t *partial;          /* an incomplete frame, kept between reads */
	size_t partial_len;
	uint8_t *wbuf; /* sealed frames waiting for the socket: [woff, wlen) */
	size_t woff, wlen, wcap;
};

/* A node's routes (routes.c), allocated once it has any row in the registry. */
struct node_routes {
	struct control_routes advertised; /* what its last ROUTES said (or the registry kept) */
	struct control_routes approved;   /* approved in the registry, advertised or not */
	struct control_routes effective;  /* both: what its peers are told in PEER_ROUTES */
	uint64_t applied_ms;              /* when its last ROUTES was applied */
	struct control_routes deferred;   /* a ROUTES that came too soon after the last ... */
	uint64_t deferred_due_ms;         /* ... applied then by routes_tick (0: none waits) */
};

/* Tags from the registry (db_tags.c): in force, and those read by a reload in progress. */
struct node_tags {
	struct db_tags cur, next;
};

/* The satellites a gateway serves (satellites.c), and their tags for the access rules. */
struct sat_set {
	struct control_satellites list;
	struct db_tags tags[CONTROL_MAX_SATELLITES];
};

/* In force, and read by a reload in progress. */
struct node_sats {
	struct sat_set cur, next;
};

struct node_entry {
	struct db_node rec;
	struct node_routes *routes; /* NULL: never advertised nor approved anything */
	struct node_sats *sats;     /* NULL: serves no satellite */
	struct node_tags *tags;     /* NULL: never had a tag */
	uint64_t hash;
	uint64_t version;     /* of its last change; the change list is sorted by it */
	struct conn *session; /* its live registered session, if online */
	struct node_entry *prev, *next; /* the change list: sessions' cursors walk it */
	struct node_entry *tomb_next;   /* removed: on the tombstone list */
	size_t tomb_pending;  /* removed: sessions that have yet to pass it */
	bool removed;         /* a tombstone: out of the hash, still in the change list */
	uint64_t last_touch_ms;
	/* Hello timestamps are kept per known node: a hello replayed for a key we do not know
	 * yet can never produce a REGISTER (that needs the node's ephemeral key), so remembering
	 * unknown keys would only let strangers grow this table. */
	uint8_t last_hello[WIRE_TIMESTAMP_LEN];
	bool has_hello;
	bool seen; /* reload: still in the registry */
	bool logged_records; /* "too many records" was logged for this node (once per node) */
	/* Endpoint updates held back by SERVER_ENDPOINT_INTERVAL_MS (the latest wins), on the
	 * server's eps_due list while pending_eps is set. */
	struct control_endpoint *pending_eps;
	size_t n_pending_eps;
	uint64_t eps_applied_ms;
	struct node_entry *eps_next;
	/* The relay (relay.c), while session is set: the token of this session, the last
	 * accepted BIND counter, the bound UDP source (if any) and the sender's bucket. */
	uint8_t relay_token[RELAY_TOKEN_LEN];
	bool relay_has_token;
	bool relay_bound;
	uint64_t relay_counter;
	uint64_t relay_bound_ms;
	union peer_addr relay_addr;
	socklen_t relay_addr_len;
	struct addrmap_key relay_addr_key;
	struct ratelimit relay_bucket;
	/* Access rules (policy_push.c): the digest of the set last sent in this session. */
	uint8_t filter_digest[POLICY_DIGEST_LEN];
	bool filter_sent;
	size_t policy_index; /* its place in the compiler's node list, while one is built */
	size_t policy_sat_index; /* where its satellites start in that list */
};

/* Open addressing with linear probing, keyed by SipHash of the node key (random key, so
 * chosen node keys cannot pile into one chain). */
struct node_table {
	struct node_entry **slots;
	size_t cap; /* power of two */
	size_t count;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct node_entry *head, *tail; /* the change list, tombstones included */
	struct node_entry *tombs;
	uint64_t version; /* of the newest change */
};

struct conn_list {
	struct conn *head, *tail;
	size_t count;
};

/* The access rules in force (policy_push.c). */
struct policy_state {
	char path[COORDCONF_PATH_MAX]; /* empty: no policy file, allow all */
	bool loaded;                   /* pol holds a checked policy */
	struct policy pol;
	struct timespec mtime;         /* the file as last read: a change is read again */
	ino_t ino;
	off_t size;
	bool dirty;                    /* nodes or rules changed: recompile and push at the tick */
	uint32_t generation;           /* of the last FILTER set sent */
};

struct coord_server {
	struct source listener, stun, stun_alt, signal, timer;
	int epoll_fd;
	bool listener_paused; /* descriptor limit hit: resumed at the next tick */
	bool stop;
	struct db *db;
	uint8_t coord_private[WIRE_KEY_LEN];
	struct control_server_key coord_key; /* the responder's state before any hello */
	struct srclimit src_conns;           /* per source: unregistered connections, hellos */
	struct srclimit src_stun;            /* per source: STUN answers */
	struct ratelimit stun_overflow;      /* STUN answers to sources src_stun has no room for */
	struct node_entry *eps_due;          /* nodes with endpoint updates held back */
	size_t routes_deferred_n;            /* nodes with a ROUTES held back (routes_tick) */
	struct node_table nodes;
	struct conn_list short_list, active_list;
	size_t n_conns;
	struct conn *flush_head;
	struct conn *dead_head; /* killed in this batch, still on their lists */
	struct conn *graveyard; /* off every list, freed at the end of the batch */
	uint64_t now_ms;        /* monotonic, read once per batch */
	uint8_t scratch[SERVER_READ_SCRATCH];
	uint8_t batch[SERVER_SEND_BATCH];
	struct server_counters counters;
	struct server_limiters limiters;
	/* REGISTER refusals by the registry's reason (OK and ERROR stay 0: db_errors counts
	 * the latter), for the metrics page. */
	uint64_t refused_by[DB_REGISTER_ERROR + 1];
	struct metrics_http *metrics; /* NULL unless metrics_listen is set */
	/* SIGHUP reads config_path again (reload.c) and compares with cfg, what runs. */
	char config_path[COORDCONF_PATH_MAX];
	struct coord_config cfg;
	bool log_level_from_cmdline; /* --log-level given: the file's log_level is ignored */
	/* The relay: bound source address -> node_entry, and what RELAY_INFO tells nodes. */
	struct addrmap relay_addrs;
	uint32_t relay_rate, relay_burst;
	uint64_t relay_bind_fresh_ms;
	uint16_t stun_port, stun_alt_port; /* as bound; alt 0: none */
	struct policy_state policy;
	struct pub_state pub; /* published services (publish.h) */
	uint8_t relay_frame[RELAY_MAX_FRAME]; /* a DATA frame built from a TCP RELAY */
	/* The STUN/relay socket is read a batch at a time (recvmmsg), and the relay frames of a
	 * batch go out together (sendmmsg) straight from the receive buffers, rewritten in
	 * place: one system call each way per batch instead of two per frame. */
	struct {
		struct mmsghdr msgs[SERVER_STUN_BATCH];
		struct iovec iov[SERVER_STUN_BATCH];
		union peer_addr from[SERVER_STUN_BATCH];
		uint8_t buf[SERVER_STUN_BATCH][SERVER_STUN_RECV_MAX];
		struct mmsghdr out[SERVER_STUN_BATCH];
		struct iovec out_iov[SERVER_STUN_BATCH];
		unsigned int n_out;
		bool batching; /* relay sends are queued in out[], not sent one by one */
	} udp;
};

int64_t server_unix_now(void);
/* Binds a numeric address ("0.0.0.0", "::", "fe80::1%eth0"; brackets allowed) and, for
 * SOCK_STREAM, listens with backlog. -1 with one line in err on failure. */
int server_open_socket(const char *host, uint16_t port, int type, const char *what, int backlog, char *err,
		       size_t err_len);
bool server_endpoints_equal(const struct control_endpoint *a, size_t na, const struct control_endpoint *b,
			    size_t nb);

/* ---------------------------------------------------------------- conn.c */

const char *conn_addr(const struct conn *c, char *buf, size_t len);
void conn_list_append(struct conn_list *l, struct conn *c);
void conn_list_remove(struct conn_list *l, struct conn *c);
/* Marks c for reaping after the current batch; it gets no more input or output. */
void conn_kill(struct coord_server *s, struct conn *c);
void conn_schedule_flush(struct coord_server *s, struct conn *c);
/* Appends bytes (a welcome) to c's queue. */
bool conn_queue_raw(struct coord_server *s, struct conn *c, const uint8_t *data, size_t len);
/* Seals one message, as a frame of its own, onto c's queue behind everything before it. */
bool conn_queue_msg(struct coord_server *s, struct conn *c, const struct control_message *m);
/* Queues a final ERROR (if the channel is up) and closes once it is flushed. */
void conn_refuse(struct coord_server *s, struct conn *c, enum control_error_code code, const char *text);
void conn_on_readable(struct coord_server *s, struct conn *c, uint64_t now_ms);
/* Sends everything due, then reaps the connections that died doing so; the end of a batch. */
void conn_flush_and_reap(struct coord_server *s);
void conn_free(struct coord_server *s, struct conn *c);

/* ---------------------------------------------------------------- dispatch.c */

/* Frame 1: the Noise hello. */
void dispatch_hello(struct coord_server *s, struct conn *c, const uint8_t *body, size_t len);
/* What one frame has asked for so far: a frame gets one KEEPALIVE answer however many it holds. */
struct frame_state {
	bool keepalive_answered;
};
/* One message of a decrypted frame. */
/* Queues CONTROL_MSG_DNS (the configured dns_domain) to c: after REGISTERED, and to every
 * session when SIGHUP changes it. */
void dispatch_send_dns(struct coord_server *s, struct conn *c);
void dispatch_message(struct coord_server *s, struct conn *c, const uint8_t *msg, size_t len, uint64_t now_ms,
		      struct frame_state *fs);
/* Applies the endpoint updates held back whose interval has passed (the tick). */
void dispatch_endpoints_due(struct coord_server *s, uint64_t now_ms);
/* e is going away (removed) or its pending update is void: off the due list, freed. */
void dispatch_endpoints_forget(struct coord_server *s, struct node_entry *e);
/* c no longer counts against its source's limit of unregistered connections. */
void conn_release_source(struct coord_server *s, struct conn *c);

/* ---------------------------------------------------------------- nodemap.c */

struct node_entry *nodemap_find(const struct node_table *t, const uint8_t key[WIRE_KEY_LEN]);
/* A new entry for a record not in the table yet, in the hash but not on the change list. */
struct node_entry *nodemap_add(struct node_table *t, const struct db_node *rec);
/* Records that a change happened to e (or that e is new, not yet on the list): e moves to the
 * tail with the next version, and every session will send it. */
void nodemap_changed(struct coord_server *s, struct node_entry *e, bool on_list);
/* Fills m with what c must hear next and returns true, or false when c is caught up. Does
 * not move c on (nodemap_news_sent does), so a message that does not fit is asked again. */
bool nodemap_next_news(struct coord_server *s, struct conn *c, struct control_message *m);
/* The message nodemap_next_news gave is on its way: c moves past it. */
void nodemap_news_sent(struct coord_server *s, struct conn *c);
bool nodemap_has_news(const struct conn *c);
/* c stops being a registered session (closing or reaped): the tombstones it still owed a
 * PEER_REMOVE no longer wait for it. */
void nodemap_session_left(struct coord_server *s, struct conn *c);
/* Writes e's last-seen time to the registry. */
void nodemap_touch(struct coord_server *s, struct node_entry *e, uint64_t now_ms);

/* ---------------------------------------------------------------- routes.c */
/* Reads every node's routes from the registry; a node whose effective routes changed is
 * pushed to every session (PEER then PEER_ROUTES). At start and after an admin's commit. */
void routes_reload(struct coord_server *s);
/* A node's ROUTES: stored, auto-approved where a rule says so, pushed if that changes what
 * peers route. At most one per SERVER_ROUTES_INTERVAL_MS is applied; a later one waits. */
void routes_on_message(struct coord_server *s, struct conn *c, const struct control_routes *adv, uint64_t now_ms);
/* From the tick: applies the ROUTES that waited out their interval. */
void routes_tick(struct coord_server *s, uint64_t now_ms);
/* The PEER_ROUTES that follows e's PEER record (and goes to e itself): false if e has none. */
bool routes_message(const struct node_entry *e, struct control_message *m);
/* Loads the registry's nodes at start. */
bool nodemap_load(struct coord_server *s);
/* Follows the registry after an admin commit: removed nodes are cut off and announced. */
void nodemap_reload(struct coord_server *s);
size_t nodemap_tomb_count(const struct node_table *t);
void nodemap_free(struct node_table *t);

/* ---------------------------------------------------------------- satellites.c */
/* Reads the registry's satellites: a gateway whose list changed gets SATELLITES, and its new
 * host routes go to every node (PEER_ROUTES). At start and after an admin's commit. */
void satellites_reload(struct coord_server *s);
/* Queues e's list (empty when none) to its session: right after REGISTERED. */
void satellites_send(struct coord_server *s, struct node_entry *e);
/* e is freed: its list (which holds preshared keys) is wiped. */
void satellites_forget(struct node_entry *e);
/* The PEER_SATELLITES that follows e's PEER_ROUTES: false if e never served a satellite. */
bool satellites_message(const struct node_entry *e, struct control_message *m);
/* e's satellites as host routes (a /32 and a /128 each) into out; how many. */
size_t satellites_routes(const struct node_entry *e, struct control_route *out, size_t cap);
/* routes.c: e's satellites changed: its effective routes are computed again and pushed. */
void routes_satellites_changed(struct coord_server *s, struct node_entry *e);

/* ---------------------------------------------------------------- stunserver.c */

/* Answers the Binding requests waiting on a STUN socket (src: s->stun or s->stun_alt); on
 * the main one, relay frames go to relay.c. */
void stunserver_on_readable(struct coord_server *s, struct source *src);

/* ---------------------------------------------------------------- metrics.c, metrics_http.c */

/* The Prometheus text exposition (format 0.0.4) of every counter and gauge, appended to out. */
void metrics_render(const struct coord_server *s, struct ipc_text *out);
/* Opens the metrics listener (cfg->metrics_port 0: none) and watches it. */
bool metrics_http_open(struct coord_server *s, const struct coord_config *cfg, char *err, size_t err_len);
/* An event on src (SOURCE_METRICS or SOURCE_METRICS_CONN). */
void metrics_http_on_event(struct coord_server *s, struct source *src, uint32_t events, uint64_t now_ms);
/* Closes connections past their deadline (the tick). */
void metrics_http_tick(struct coord_server *s, uint64_t now_ms);
void metrics_http_close(struct coord_server *s);

/* ---------------------------------------------------------------- reload.c */

/* SIGHUP: reads the configuration again and applies what can change live. */
void coord_server_reload(struct coord_server *s);

/* ---------------------------------------------------------------- relay.c */

/* e's session c was just registered (REGISTERED queued): a fresh token, no binding, a full
 * bucket, and RELAY_INFO to the node. */
void relay_session_start(struct coord_server *s, struct node_entry *e, struct conn *c);
/* e's session ends (closed, replaced, refused, removed): its binding and token go at once. */
void relay_session_end(struct coord_server *s, struct node_entry *e);
/* A datagram on the STUN port whose first byte is a relay type (buf may be rewritten). */
/* Sends the relay frames queued during a batch (stunserver.c). */
void relay_flush_udp(struct coord_server *s);
void relay_on_datagram(struct coord_server *s, uint8_t *buf, size_t len, const union peer_addr *from,
		       socklen_t from_len);
/* CONTROL_MSG_RELAY from the registered session c. */
void relay_on_control(struct coord_server *s, struct conn *c, const struct control_relay *m);
void relay_free(struct coord_server *s);

/* Access rules (policy_push.c). */
bool policy_push_open(struct coord_server *s, const char *path, char *err, size_t err_len);
void policy_push_close(struct coord_server *s);
/* SIGHUP or a changed file: path is the configuration's policy_file (may have changed). */
void policy_push_reload(struct coord_server *s, const char *path, const char *why);
/* A node joined, left or was renumbered: sets are recompiled at the next tick. */
void policy_push_nodes_changed(struct coord_server *s);
/* Right after RELAY_INFO: the node's current rule set. */
void policy_push_session(struct coord_server *s, struct node_entry *e);
/* The registry changed (an admin command): tags are read again; a change recompiles. */
void policy_push_tags_reload(struct coord_server *s);
/* The tick: a changed file is read again; changed sets are sent. */
void policy_push_tick(struct coord_server *s);

#endif
