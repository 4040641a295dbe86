/* The mesh's names: every node answers DNS on 100.100.100.100 (and <overlay /48>::6464:6464)
 * on its own interface. <name>.<domain> gets the peer's (or this node's) addresses from the
 * coordinator's map, an unknown name in the domain NXDOMAIN, and any other name is forwarded
 * to the system's resolvers (dnsfwd.c) and the answer relayed back.
 *
 * Follow one query: the stub resolver sends UDP to 100.100.100.100:53; the kernel routes it
 * into the TUN (the overlay's /10 is on-link there); tx.c reads it and, before any peer
 * lookup, hands it to dnsd_intercept; the answer is built here and written back into the TUN
 * as an IP/UDP packet from the service address, which the kernel delivers to the stub.
 *
 * Why intercept in the TX path rather than bind a socket to the address: no address has to
 * be added to the interface (a second address on the TUN would show up in every `ip addr`
 * and in the endpoints the node reports), it works the same for IPv4 and IPv6, it needs no
 * privileges after the drop (a bind to port 53 needs CAP_NET_BIND_SERVICE), and the packet
 * never leaves the one thread that owns the peer map the answers come from. */
#ifndef MESHD_DNSD_H
#define MESHD_DNSD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include "core/dns.h"
#include "core/gso.h"
#include "core/ipaddr.h"

enum {
	/* Forwarded queries waiting for an upstream answer, each with its own socket (its own
	 * random source port). A stub asks a few at a time; a flood beyond this is dropped, not
	 * queued, so one local program cannot make meshd hold more than this many fds. */
	DNSD_PENDING_MAX = 64,
	/* glibc reads at most three nameservers (MAXNS); so do we. */
	DNSD_UPSTREAMS_MAX = 3,
	/* An upstream answer later than this is SERVFAIL to the client: glibc's stub gives up
	 * after 5 s by default, so waiting longer helps nobody. */
	DNSD_UPSTREAM_TIMEOUT_MS = 4000,
	/* resolv.conf is looked at again (a stat) at most this often, when a query needs it:
	 * DHCP and VPN clients rewrite it while we run. */
	DNSD_RESOLV_CHECK_MS = 2000,
	/* The largest upstream answer relayed: what the EDNS0 sizes clients ask for reach in
	 * practice; a larger one is cut to a SERVFAIL (the client can retry over TCP elsewhere). */
	DNSD_UPSTREAM_MSG_MAX = 4096,
	DNSD_IPV4_HEADER_LEN = 20,
};

#define DNSD_RESOLV_CONF "/etc/resolv.conf"

#define DNSD_COUNTERS(X)                                                                   \
	X(queries)             /* DNS queries that reached the service address */         \
	X(answered_local)      /* answered from the map (addresses or no data) */         \
	X(nxdomain)            /* unknown names inside the mesh's domain */               \
	X(refused_malformed)   /* FORMERR/NOTIMP answers, or dropped: not a query */      \
	X(not_dns)             /* not UDP to 53: pings answered, TCP/UDP "port unreachable" */ \
	X(forwarded)           /* queries sent to an upstream resolver */                 \
	X(forward_full)        /* dropped: DNSD_PENDING_MAX queries already waiting */    \
	X(forward_no_upstream) /* SERVFAIL: no usable nameserver in resolv.conf */        \
	X(upstream_answers)    /* upstream answers relayed to the client */               \
	X(upstream_mismatched) /* datagrams on a query's socket that did not answer it */  \
	X(upstream_timeouts)   /* SERVFAIL: no upstream answer in time */

struct dnsd_counters {
#define DNSD_COUNTER_FIELD(name) uint64_t name;
	DNSD_COUNTERS(DNSD_COUNTER_FIELD)
#undef DNSD_COUNTER_FIELD
};

/* Who asked: the answer goes back from the address it asked (service) to its port. */
struct dnsd_client {
	int family; /* AF_INET or AF_INET6 */
	uint8_t client[16];
	uint8_t service[16];
	uint16_t port;
};

/* One forwarded query (fd -1: a free slot). */
struct dnsd_pending {
	int fd;                  /* connected to the upstream: only its answers arrive here */
	uint16_t upstream_id;    /* the random ID the upstream sees */
	uint16_t client_id;      /* the client's ID, put back in the answer */
	uint16_t client_flags;   /* for a SERVFAIL on timeout (RD echoed) */
	uint64_t deadline_ms;
	struct dnsd_client client;
	struct dns_question q;   /* the answer must repeat it, case and all */
};

struct dnsd {
	struct dnsd_pending pending[DNSD_PENDING_MAX];
	unsigned int n_pending;
	struct sockaddr_storage upstream[DNSD_UPSTREAMS_MAX];
	size_t n_upstreams;
	size_t next_upstream; /* round robin: a dead first server costs every other query only */
	const char *resolv_path;
	bool resolv_known;    /* resolv_* below describe the file last read */
	struct timespec resolv_mtime;
	ino_t resolv_ino;
	off_t resolv_size;
	uint64_t resolv_checked_ms;
	struct dnsd_counters counters;
	struct resolved_link *resolved; /* systemd-resolved's settings we made, or NULL */
};

struct device;
struct config;

/* Sets up the resolver for a node with a coordinator and `dns: on` (dev->dns stays NULL
 * otherwise); reads resolv_path (NULL: DNSD_RESOLV_CONF). Only fails for memory. */
bool dnsd_open(struct device *dev, const struct config *cfg, const char *resolv_path, char *err, size_t err_len);
void dnsd_close(struct device *dev);

/* A packet read from the TUN (checked by ip_packet_parse): true if it was for the service
 * address and is consumed (answered, forwarded or dropped and counted). */
bool dnsd_intercept(struct device *dev, uint8_t *pkt, const struct ip_packet_info *info, uint64_t now_ms);

/* The DNS answer to one query from cl (msg may be changed: its ID, when forwarded). */
void dnsd_handle_query(struct device *dev, const struct dnsd_client *cl, uint8_t *msg, size_t len,
		       uint64_t now_ms);
/* Sends payload back to cl as an IP/UDP packet into the TUN. */
void dnsd_reply(struct device *dev, const struct dnsd_client *cl, const uint8_t *payload, size_t len);

/* The service addresses: IPv4 always; IPv6 once this node has an overlay /48 (false before). */
bool dnsd_service_ipv6(const struct device *dev, uint8_t out[16]);

/* The coordinator named a (new) domain or gave this node its addresses: tell resolved. */
void dnsd_node_changed(struct device *dev);

void dnsd_log_counters(const struct device *dev);

/* ---------------------------------------------------------------- upstream (dnsfwd.c) */

/* Forwards msg (a parsed query, q its question) to an upstream for cl. */
void dnsfwd_query(struct device *dev, const struct dnsd_client *cl, uint8_t *msg, size_t len,
		  const struct dns_question *q, uint16_t flags, uint64_t now_ms);
bool dnsfwd_owns_fd(const struct device *dev, int fd);
void dnsfwd_on_readable(struct device *dev, int fd, uint64_t now_ms);
/* Times out queries whose upstream did not answer. */
void dnsfwd_tick(struct device *dev, uint64_t now_ms);
uint64_t dnsfwd_next_deadline(const struct device *dev);
void dnsfwd_close_all(struct dnsd *d);
/* Reads the nameservers of resolv.conf text into d (exported for tests): skips our own
 * service addresses (a loop) and anything that is not an IP address. */
void dnsfwd_parse_resolv(struct dnsd *d, const char *text, size_t len, const uint8_t service6[16],
			 bool have_service6);

#endif
