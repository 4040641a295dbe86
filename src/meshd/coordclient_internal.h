/* What the coordinator client's two files share (coordclient.c: the connection, the peer map,
 * saved state; coordendpoints.c: this node's candidate endpoints and STUN) and nothing else
 * sees. */
#ifndef MESHD_COORDCLIENT_INTERNAL_H
#define MESHD_COORDCLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/joinkey.h"
#include "core/stun.h"
#include "meshd/config.h"
#include "meshd/coordclient.h"
#include "meshd/state.h"

struct device;

enum {
	COORD_BACKOFF_MIN_MS = 1000,        /* first retry soon: the coordinator may just be restarting */
	COORD_BACKOFF_MAX_MS = 30000,       /* never wait longer than this for a returning coordinator */
	COORD_CONNECT_TIMEOUT_MS = 10000,   /* connect + handshake + register; matches the server's limit */
	COORD_KEEPALIVE_MS = 25000,         /* well inside the server's 75 s idle limit and NAT timeouts */
	COORD_DEAD_AFTER_MS = 75000,        /* three keepalives unanswered: reconnect */
	COORD_STATE_SAVE_DELAY_MS = 1000,   /* batch a burst of map changes into one write */
	/* Map changes (peers' endpoints, peers coming and going) are written at most this often:
	 * a save of a large map takes tens of ms of the packet loop (format, write, fsync), and a
	 * node that floods the coordinator with endpoint changes makes every node's map churn. A
	 * restart within it loses only endpoint news the coordinator resends anyway; our own
	 * registration (addresses, pinned overlay) is written after COORD_STATE_SAVE_DELAY_MS. */
	COORD_STATE_SAVE_MIN_INTERVAL_MS = 30000,
	/* Re-learn the reflexive address (NAT mappings change): under conntrack's 30 s for an
	 * unreplied UDP flow, so the mapping the coordinator saw stays the one peers are told. */
	COORD_STUN_INTERVAL_MS = 25000,
	COORD_STUN_RETRY_MS = 3000,         /* an unanswered STUN request is retried this soon */
	/* Re-read interface addresses (DHCP, roaming: a laptop changing networks). getifaddrs
	 * costs microseconds; a new address is published within this long, and a fresh STUN
	 * answer follows at once. */
	COORD_ENDPOINT_CHECK_MS = 5000,
	/* Control messages are few and small; relayed datagrams (UDP blocked) fill the rest: about
	 * 170 full-size packets, a few milliseconds of a fast link, and the most a stalled
	 * connection holds before relayed packets are dropped rather than queued. */
	COORD_WRITE_QUEUE = 256 * 1024,
	/* Relayed datagrams may fill the queue only up to here, so a control message (a
	 * keepalive, new endpoints) always finds room behind them. */
	COORD_RELAY_QUEUE_LIMIT = COORD_WRITE_QUEUE - 16 * 1024,
	/* Relayed datagrams over TCP come many frames at a time: read them in one call. */
	COORD_READ_BUFFER = 64 * 1024,
	COORD_MIN_OVERLAY_BITS_V4 = 8,      /* no overlay wider than a /8 (ours is a /10) */
	COORD_MIN_OVERLAY_BITS_V6 = 16,     /* nor than a /16 (ours is a ULA /48) */
};

_Static_assert(COORD_READ_BUFFER >= CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME, "a read can complete any frame");

enum coord_phase {
	COORD_IDLE,        /* waiting for next_connect_ms */
	COORD_CONNECTING,  /* TCP connect in progress */
	COORD_HELLO_SENT,  /* waiting for the Noise answer */
	COORD_REGISTERING, /* REGISTER sent, waiting for REGISTERED */
	COORD_READY,
};

struct coordclient {
	char state_dir[CONFIG_PATH_MAX];
	struct node_state state;
	bool have_join;
	struct joinkey join;

	enum coord_phase phase;
	int fd;
	uint32_t watched; /* epoll events currently registered for fd */
	struct control_channel ch;
	uint8_t rbuf[COORD_READ_BUFFER];
	size_t rlen;
	uint8_t wbuf[COORD_WRITE_QUEUE];
	size_t wlen;

	uint64_t next_connect_ms;
	uint64_t backoff_ms;
	/* For the log: when the registered session was lost (0: it was not), and how many tries
	 * since failed (the first failure is a warning, the rest debug, until it is back). */
	uint64_t lost_ms;
	unsigned int failed_attempts;
	uint64_t phase_deadline_ms;
	uint64_t last_rx_ms, last_tx_ms;
	uint32_t map_generation;

	uint32_t over_max_warned_generation; /* the map that was told it exceeds max_peers */
	bool state_dirty;
	bool state_urgent;          /* our registration changed: save without the interval */
	bool state_saved_once;      /* state_saved_ms is set */
	uint64_t state_saved_ms;
	uint64_t state_dirty_since_ms;

	struct sockaddr_storage coord_addr; /* resolved once (see resolve_coordinator) */
	socklen_t coord_addr_len;           /* 0 until resolved */
	struct sockaddr_storage stun_server; /* in the data socket's family */
	bool have_stun_server;
	uint8_t stun_txid[STUN_TRANSACTION_ID_LEN];
	bool stun_pending;
	uint64_t stun_next_ms;
	bool have_reflexive;
	struct control_endpoint reflexive;
	/* The same question to the coordinator's second STUN port in each round: a different
	 * answer means our NAT maps per destination (a hard NAT, see punch.h). */
	uint8_t alt_txid[STUN_TRANSACTION_ID_LEN];
	bool alt_pending;
	bool round_main_answered, round_alt_answered;
	struct control_endpoint round_main, round_alt;
	int mapping_varies; /* -1 unknown, 0 no, 1 yes */

	struct control_endpoint reported[CONTROL_MAX_ENDPOINTS];
	size_t n_reported;
	uint64_t endpoint_check_ms;
};

/* coordclient.c: seals m as a frame and queues it; false (and disconnected) if it cannot. */
bool coordclient_send_message(struct device *dev, struct coordclient *cc, const struct control_message *m,
			      uint64_t now_ms);

/* coordendpoints.c */
/* Interface addresses (with our port) and the reflexive address: what peers may reach us at. */
size_t coordclient_gather_endpoints(struct device *dev, struct coordclient *cc, struct control_endpoint *out);
/* Sends ENDPOINTS if they changed since the last report (and asks STUN again if they did). */
void coordclient_report_endpoints(struct device *dev, struct coordclient *cc, uint64_t now_ms);
/* A STUN round: the main port (reflexive address) and the alt port (does the mapping vary?). */
void coordclient_send_stun(struct device *dev, struct coordclient *cc, uint64_t now_ms);

/* coordmap.c: the peer map and the state file. */
struct peer;
void coordmap_mark_dirty(struct coordclient *cc, uint64_t now_ms);
/* Same for our own registration: written without waiting for the save interval. */
void coordmap_mark_dirty_urgent(struct coordclient *cc, uint64_t now_ms);
/* When the next save is due (UINT64_MAX: nothing to save): COORD_STATE_SAVE_DELAY_MS after the
 * first change, and for map changes no sooner than COORD_STATE_SAVE_MIN_INTERVAL_MS after the
 * last save. */
uint64_t coordmap_save_due_ms(const struct coordclient *cc);
/* The state's copy of the peers is needed only while a file is read or written. */
void coordmap_drop_saved(struct coordclient *cc);
void coordmap_save(struct device *dev, struct coordclient *cc, uint64_t now_ms);
/* A peer record from the map (or a delta, or the saved state): added or updated. */
void coordmap_apply_peer(struct device *dev, struct coordclient *cc, const struct control_peer *announced,
			 uint64_t now_ms);
void coordmap_remove_peer(struct device *dev, struct coordclient *cc, struct peer *p, uint64_t now_ms);
/* After a full map: coordinator peers it did not list are gone. */
void coordmap_sweep(struct device *dev, struct coordclient *cc, uint64_t now_ms);
/* The end of a full map: sweep, then start handshakes with the peers that have no session. */
void coordmap_complete(struct device *dev, struct coordclient *cc, uint64_t now_ms);
/* One FILTER part: a complete set goes in force at once and into the state file soon. */
void coordmap_apply_filter(struct device *dev, struct coordclient *cc, const struct control_filter *f,
			   uint64_t now_ms);

#endif
