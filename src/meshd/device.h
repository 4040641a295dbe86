/* The running node: its TUN interface, its UDP socket, its peers, and the one epoll
 * loop that moves packets between them.
 *
 * Follow one packet:
 *   epoll wakes (loop.c) -> TUN read, TSO split (tx.c) -> route lookup by inner destination
 *   (peer.c) -> peer's current session -> session_encrypt (core/session.c, core/aead.c)
 *   -> udp outbox -> sendmmsg (socket.c)
 *   recvmmsg (socket.c) -> type dispatch (rx.c) -> session_decrypt (replay check inside)
 *   -> inner source must belong to the peer (peer.c) -> coalesced TUN write (rx.c)
 * This file's functions open and close the device (device.c); loop.c runs it.
 *
 * Packets move in batches of DEVICE_BATCH through every stage and all buffers are
 * allocated once at start-up, so nothing allocates per packet. */
#ifndef MESHD_DEVICE_H
#define MESHD_DEVICE_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/allowedips.h"
#include "core/cookie.h"
#include "core/srclimit.h"
#include "core/gro.h"
#include "core/handshake.h"
#include "core/log.h"
#include "meshd/acl.h"
#include "meshd/config.h"
#include "meshd/netlink.h"
#include "meshd/peertable.h"
#include "meshd/relayclient.h"
#include "meshd/stage.h"
#include "meshd/timerq.h"
#include "meshd/udpoffload.h"

enum {
	DEVICE_BATCH = 64, /* packets per recvmmsg/sendmmsg/TUN-read round: amortizes syscalls */
	/* Under load, handshake messages with a valid cookie per source address (IPv4 address or
	 * IPv6 /64): WireGuard's ratelimiter, 20 a second in bursts of 5, ample for real peers
	 * (one handshake per 2 minutes each); the cookie proved the sender owns its address. */
	DEVICE_HANDSHAKES_PER_SOURCE_PER_S = 20,
	DEVICE_HANDSHAKE_BURST_PER_SOURCE = 5,
	DEVICE_HANDSHAKE_SOURCES = 4096, /* sources tracked at once (~150 KiB, touched as used) */
	/* Probes (disco pings, copies of an initiation) to candidate endpoints that have not
	 * answered yet, per destination address (IPv4 address or IPv6 /64): a node announcing a
	 * victim's address, or many nodes announcing one, get at most this much sent there by
	 * each node (~10 KB/s). A hundred nodes behind one NAT address still get probed every
	 * couple of seconds each. */
	DEVICE_PROBES_PER_DESTINATION_PER_S = 100,
	DEVICE_PROBE_BURST_PER_DESTINATION = 100,
	DEVICE_PROBE_DESTINATIONS = 4096,
	/* Peers handshaken ahead of traffic (device_initiate_ahead). Enough for a home mesh to be
	 * ready before its first packet; beyond it handshakes start with traffic, as in WireGuard:
	 * an unanswered initiation is retried every 5 s for 90 s, so initiating ahead to a whole
	 * 10,000-peer map cost ~2,000 Diffie-Hellman a second for 90 s (30 % of a CPU, measured)
	 * after every start and every new map. */
	DEVICE_INITIATE_AHEAD_MAX = 64,
	/* Outer datagram room: inner MTU rounded up to the padding, plus data header and tag. */
	DEVICE_DATAGRAM_OVERHEAD = WIRE_DATA_HEADER_LEN + WIRE_AEAD_TAG_LEN + WIRE_DATA_PADDING,
	/* Every outbox slot starts with room for a relay header, so a datagram written for a
	 * peer can be relayed without a copy (relayclient_send writes the header in front). */
	DEVICE_SLOT_HEADROOM = RELAY_DATA_HEADER_LEN,
	/* One TUN read with offloads: the virtio header and a super-packet of up to 64 KB
	 * (an IPv6 payload length of 65535 plus its fixed header). */
	DEVICE_TUN_READ_MAX = VNET_HDR_LEN + GSO_MAX_PACKET + IPV6_HEADER_LEN,
};
_Static_assert((int)DEVICE_BATCH <= (int)GRO_MAX_PACKETS, "one receive batch must fit one coalescing plan");

/* Every reason a packet is dropped or a notable thing happens has a counter, so that
 * "dropped and counted" can be checked from outside (SIGUSR1 logs them). */
#define DEVICE_COUNTERS(X)                                                                  \
	X(rx_datagrams)          /* datagrams received on the UDP socket */                \
	X(tx_datagrams)          /* datagrams sent */                                       \
	X(rx_invalid_type)       /* unknown message type or protocol version */             \
	X(rx_invalid_size)       /* wrong length for the message type, or truncated */       \
	X(rx_handshake_invalid)  /* failed mac1 or Noise authentication, or unknown peer */ \
	X(rx_handshake_replayed) /* initiation timestamp not newer than the last accepted */ \
	X(tx_cookie_replies)     /* under load: handshakes answered with a cookie reply */  \
	X(rx_cookie_replies)     /* a peer under load sent us a cookie (our next try has mac2) */ \
	X(rx_cookie_invalid)     /* cookie reply for no handshake of ours, or not authentic */ \
	X(rx_handshake_ratelimited) /* under load, mac2 valid, but its source is over its rate */ \
	X(rx_handshake_shed)     /* under load, no mac2, and this second's cookie replies spent */ \
	X(map_peers_over_max)    /* coordinator peers ignored: the map is larger than max_peers */ \
	X(map_endpoints_refused) /* candidate endpoints from the map nobody may dial (loopback...) */ \
	X(tx_probes_limited)     /* probes not sent: their destination is over its rate */ \
	X(rx_data_unknown_index) /* data for a session we do not have */                    \
	X(rx_data_auth_failed)   /* data failed AEAD, or its session expired */             \
	X(rx_data_replayed)      /* data counter already seen or too old */                 \
	X(rx_data_bad_source)    /* inner source address not owned by the sending peer */   \
	X(rx_data_malformed)     /* decrypted payload is not a valid IP packet */           \
	X(rx_acl_dropped)        /* decrypted packet no access rule allows (acl.h) */       \
	X(rx_coalesced)          /* packets written to TUN inside a super-packet (GRO) */   \
	X(rx_coalesced_udp)      /* of those, UDP datagrams (a GSO_UDP_L4 super-packet) */  \
	X(tx_offload_invalid)    /* TUN read whose virtio header does not fit the packet */ \
	X(tx_segmented)          /* packets split from TUN super-packets (TSO/USO) */       \
	X(tx_gso_sends)          /* sendmmsg messages that carried several datagrams (GSO) */ \
	X(rx_gro_receives)       /* received messages that held several datagrams (GRO) */ \
	X(handshakes_completed)  /* sessions established, either role */                    \
	X(handshake_no_memory)   /* handshakes not started or answered: out of memory */    \
	X(tx_no_route)           /* TUN packet whose destination no peer owns */            \
	X(tx_no_path)            /* datagram for a peer with no direct path and no relay */ \
	X(tx_dropped)            /* packet dropped: staging queue full or send error */     \
	X(tx_relayed)            /* datagrams sent through the coordinator's relay */       \
	X(rx_relayed)            /* datagrams received through the relay */                 \
	X(rx_relay_invalid)      /* relay frame not from our relay, or malformed */         \
	X(rx_disco_invalid)      /* disco message from no peer of ours, or not authentic */ \
	X(disco_rounds)          /* probe rounds: every candidate pinged, call-me-maybe sent */ \
	X(disco_pings_sent)      /* disco pings sent */                                     \
	X(disco_pongs_matched)   /* pongs that answered one of our pings */                 \
	X(disco_cmm_sent)        /* call-me-maybe sent through the relay */                 \
	X(disco_cmm_answered)    /* call-me-maybe answered with pings */                    \
	X(punch_attempts)        /* birthday punches started, either side */               \
	X(punch_successes)       /* birthday punches that found a direct path */           \
	X(punch_probes_sent)     /* easy side: random-port probes sent */               \
	X(satellite_forwarded)   /* packets forwarded between a satellite and the mesh */ \
	X(satellite_refused)     /* ... and refused: between a satellite and a static peer */ \
	X(satellites_refused)    /* satellites from the coordinator not taken (key, addresses) */

/* Per-packet trouble that is logged: each kind has its own limiter (device_log_limited), so
 * a flood of one kind cannot hide the first lines of another, and what a limiter held back
 * is summed up in one line, naming the kind, when its window ends (device_log_suppressed). */
#define DEVICE_LOG_KINDS(X)                                                                   \
	X(handshake_invalid, "handshakes that did not authenticate")                          \
	X(handshake_unknown_peer, "handshakes from keys that are not our peers")              \
	X(handshake_replayed, "replayed handshake initiations")                               \
	X(response_invalid, "handshake responses that did not authenticate")                  \
	X(cookie_invalid, "cookie replies that did not authenticate")                         \
	X(data_bad_source, "packets whose inner source the peer does not own")                \
	X(acl_dropped, "packets the access rules do not allow")                                \
	X(tun_write, "failed writes to the interface")                                        \
	X(tun_read, "failed reads from the interface")                                        \
	X(udp_receive, "failed receives on the UDP socket")

enum device_log_kind {
#define DEVICE_LOG_KIND_ENUM(name, what) DEVICE_LOG_##name,
	DEVICE_LOG_KINDS(DEVICE_LOG_KIND_ENUM)
#undef DEVICE_LOG_KIND_ENUM
	DEVICE_LOG_KIND_N
};

/* What kind's lines are about, for the summary ("handshakes that did not authenticate"). */
const char *device_log_kind_what(enum device_log_kind kind);

/* Logs a warning of `kind` unless its limiter is closed; the first line after a closed
 * window says how many were held back. */
#define device_log_limited(dev, kind, now_ms, ...)                                                  \
	do {                                                                                        \
		unsigned int suppressed_;                                                           \
		if (log_ratelimit_allow(&(dev)->log_limits[kind], (now_ms), &suppressed_)) {        \
			if (suppressed_)                                                            \
				log_warn("(%u more %s were not logged)", suppressed_,               \
					 device_log_kind_what(kind));                               \
			log_warn(__VA_ARGS__);                                                      \
		}                                                                                   \
	} while (0)

struct device_counters {
#define DEVICE_COUNTER_FIELD(name) uint64_t name;
	DEVICE_COUNTERS(DEVICE_COUNTER_FIELD)
#undef DEVICE_COUNTER_FIELD
};

struct peer;

/* Datagrams waiting for one sendmmsg. */
struct udp_outbox {
	struct mmsghdr msgs[DEVICE_BATCH];
	struct iovec iov[DEVICE_BATCH];
	struct sockaddr_storage dest[DEVICE_BATCH];
	uint8_t *buffers; /* DEVICE_BATCH * slot_size: DEVICE_SLOT_HEADROOM, then payload_room */
	size_t slot_size;
	size_t payload_room;
	unsigned int count;
	/* With UDP GSO: the messages actually sent, each a run of msgs' datagrams
	 * (gso_first, gso_n) with a UDP_SEGMENT control message when longer than one. */
	struct mmsghdr gso_msgs[DEVICE_BATCH];
	unsigned int gso_first[DEVICE_BATCH], gso_n[DEVICE_BATCH];
	uint8_t gso_control[DEVICE_BATCH][UDPOFFLOAD_CMSG_SPACE];
};

/* Datagrams filled by one recvmmsg. */
struct udp_inbox {
	struct mmsghdr msgs[DEVICE_BATCH];
	struct iovec iov[DEVICE_BATCH];
	struct sockaddr_storage source[DEVICE_BATCH];
	uint8_t control[DEVICE_BATCH][UDPOFFLOAD_CMSG_SPACE]; /* UDP_GRO's segment size */
	uint8_t *buffers;
	size_t slot_size;
};

struct device {
	struct handshake_identity identity;
	struct cookie_checker cookies; /* under load: cookie replies instead of handshakes */
	struct srclimit handshake_limit; /* under load: handshakes per proven source address */
	struct srclimit probe_limit;     /* probes per destination not yet known to answer */
	char ifname[IFNAMSIZ];
	int ifindex;
	unsigned int mtu;
	int tun_fd;
	int udp_fd;
	uint16_t listen_port; /* as bound (the configured one, or the kernel's pick for 0) */
	int udp_family; /* AF_INET6 (dual-stack) or AF_INET when IPv6 is unavailable */
	bool udp_gso, udp_gro; /* the socket's offloads (udpoffload.h), probed at open */
	int epoll_fd;
	int signal_fd;
	struct netlink nl;
	bool netlink_open;

	struct peer **peers; /* pointers stay valid while the array grows and shrinks */
	size_t max_peers;    /* config max_peers: a coordinator's map adds no more than this */
	size_t n_peers;
	size_t peers_cap;
	/* Per-packet and per-turn lookups that do not grow with the map (peer.c keeps them in
	 * step with the peers): */
	struct allowedips routes;   /* inner address -> peer (longest prefix) */
	struct index_table indices; /* our receiver index -> peer */
	struct key_table keys;      /* public key -> peer */
	struct timerq timerq;       /* peers by next deadline */
	struct stage_pool stage;    /* packets waiting for handshakes, shared by all peers */
	bool relay_was_available;   /* at the last timer turn (a change makes every peer due) */
	struct acl acl;            /* access rules from the coordinator: inactive = allow all */
	struct coordclient *coord; /* NULL without a coordinator */
	struct meshroutes *mroutes; /* subnet routes and exit node (meshroutes.h), or NULL */
	struct relayclient relay;  /* unused (have_info false) without a coordinator */
	unsigned int punch_hard_attempts, punch_easy_attempts; /* in progress (punch.h limits) */
	/* The datagram being handled came in on this peer's punch socket (else NULL / -1):
	 * replies and the path it confirms go through that socket. */
	struct peer *rx_punch_peer;
	int rx_punch_fd;
	struct ctl *ctl;           /* the control socket (owned by main), or NULL */
	struct dnsd *dns;          /* the mesh's DNS service (dnsd.h), or NULL when off */
	size_t n_satellites;       /* peers that are satellites we serve (satellites.h) */
	struct pubnode *pub;       /* services published through the coordinator (publish.h) */
	/* SIGHUP (reload.h): the file to read again and the configuration running now (main's),
	 * or NULL without reload_init. */
	const char *config_path;
	struct config *running_cfg;
	bool log_level_from_cmdline;
	int exit_code;             /* what device_run's caller should exit with */
	bool ready_notified;       /* systemd has its READY=1 (loop.c) */

	struct udp_inbox inbox;
	struct udp_outbox outbox;
	uint8_t *plain_buffers; /* DEVICE_BATCH * plain_slot_size: TUN reads and decrypts */
	size_t plain_slot_size;
	/* TUN offloads (tun.h features; 0 for a plain TUN and offline devices): reads then
	 * come into tun_read_buf, and decrypted packets wait in rx_pending (in plain_buffers)
	 * until rx_flush_tun coalesces and writes them. */
	unsigned int tun_features;
	uint8_t *tun_read_buf; /* DEVICE_TUN_READ_MAX bytes */
	struct gro_packet rx_pending[DEVICE_BATCH];
	unsigned int rx_pending_count;

	struct device_counters counters;
	struct log_ratelimit log_limits[DEVICE_LOG_KIND_N]; /* device_log_limited */
	bool stop_requested;
};

/* Opens the TUN interface, configures it, opens the UDP socket and prepares the peers.
 * On failure err holds one line saying what failed and what to do. */
bool device_open(struct device *dev, const struct config *cfg, const uint8_t private_key[WIRE_KEY_LEN],
		 char *err, size_t err_len);
/* Same, without any interface or socket: for the fuzz target and tests. */
bool device_open_offline(struct device *dev, const struct config *cfg, const uint8_t private_key[WIRE_KEY_LEN],
			 char *err, size_t err_len);
/* Runs the event loop (loop.c) until SIGTERM or SIGINT. Returns 0, or -1 on a fatal error. */
int device_run(struct device *dev);
/* Removes the interface, closes everything and wipes keys. Safe on a partly opened device. */
void device_close(struct device *dev);

/* Acts (loop.c) on every peer timer that expired at or before now_ms (handshake retries, keepalives,
 * key wipes, probes): only the peers that are due, through the timer heap. What it sends
 * stays in the outbox (the caller flushes): tests with an offline device read the
 * datagrams there. */
void device_run_timers(struct device *dev, uint64_t now_ms);
/* p's timers, path or punch may have changed outside the device's own lookups (which mark
 * the peers they find): its deadline is recomputed before the loop next sleeps. */
void device_peer_touch(struct device *dev, struct peer *p);

void device_log_counters(const struct device *dev);
/* Logs one summary for each kind whose window ended with lines held back (the timer turn). */
void device_log_suppressed(struct device *dev, uint64_t now_ms);
/* When device_log_suppressed has a summary to log (the loop wakes for it), or UINT64_MAX. */
uint64_t device_log_next_deadline(const struct device *dev);

/* At start and when a coordinator's map is complete: handshakes with up to
 * DEVICE_INITIATE_AHEAD_MAX peers that have no session, so a restarted node (or a new peer)
 * has working sessions within a round trip instead of at the first packet. */
void device_initiate_ahead(struct device *dev, uint64_t now_ms);

/* Peers can come and go while running (the coordinator's peer map). */
struct peer *device_peer_add(struct device *dev, const struct config_peer *cp);
/* Sets a static peer's endpoint from cp's host and port (a name is resolved: blocking). */
bool device_peer_resolve_endpoint(struct device *dev, struct peer *p, const struct config_peer *cp, char *err,
				  size_t err_len);
void device_peer_remove(struct device *dev, struct peer *p);
/* Watches fd for the given epoll events (0 stops watching; the fd stays open). */
bool device_watch_fd(struct device *dev, int fd, uint32_t events);
/* Adds an address to the interface (a coordinator's assignment). */
bool device_add_address(struct device *dev, const struct ip_prefix *addr, char *err, size_t err_len);

/* The UDP socket and its outbox: device_outbox_slot, _commit, _flush (socket.c). */
#include "meshd/socket.h"

#endif
