/* meshcoord's YAML configuration (conf/meshcoord.yaml is the commented example).
 * Strict like the node's: unknown keys and bad values are refused as "file:line:col: ...". */
#ifndef MESHCOORD_COORDCONF_H
#define MESHCOORD_COORDCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ipaddr.h"
#include "core/log.h"
#include "core/routes.h"
#include "core/yamlread.h"

enum {
	COORDCONF_PATH_MAX = 4096,
	/* The second STUN port's default (the next one after STUN's 3478), so netcheck can
	 * tell a NAT whose mapping depends on the destination port. */
	COORDCONF_DEFAULT_STUN_ALT_PORT = 3479,
	/* Relay limit per node, bytes/s: 100 Mbit/s, well above what a relayed path is for
	 * (a fallback while punching, or for hard NATs) yet far below a server's uplink. */
	COORDCONF_DEFAULT_RELAY_RATE = 12500000,
	/* Nodes re-bind every ~20 s; three missed BINDs and the node's UDP path to us is
	 * presumed gone, so its relayed frames go over its TCP session instead. */
	/* meshd BINDs every 15 s: two lost BINDs and packets for it go over TCP instead. */
	COORDCONF_DEFAULT_RELAY_BIND_FRESH_S = 35,
	COORDCONF_MAX_RELAY_BIND_FRESH_S = 3600,
	/* Auto-approval rules: a network has a few; the bound keeps the config struct small. */
	COORDCONF_MAX_AUTO_APPROVE = 32,
	/* publish: (issue 11). Concurrent connections (TCP) or flows (UDP) per published
	 * service: each costs two descriptors and up to three 64 KiB buffers here. */
	COORDCONF_PUBLISH_DEFAULT_MAX_CONNECTIONS = 256,
	COORDCONF_PUBLISH_MAX_CONNECTIONS = 16384,
	/* A TCP stream that moved no byte either way for this long is closed (a forgotten
	 * keep-alive connection holds a slot); frp and nginx use minutes too. */
	COORDCONF_PUBLISH_DEFAULT_IDLE_S = 300,
	/* A UDP flow (one client address) silent for this long is forgotten: above common NAT
	 * UDP timeouts' lower end (30 s), so a game client's flow survives a quiet moment. */
	COORDCONF_PUBLISH_DEFAULT_UDP_IDLE_S = 60,
	COORDCONF_PUBLISH_MAX_IDLE_S = 86400,
};

/* publish: what the coordinator may publish for nodes. Off (enabled false) when absent. */
struct coord_publish_config {
	bool enabled;
	uint16_t port_lo, port_hi;          /* the ports an admin may grant, inclusive */
	char bind_host[ENDPOINT_HOST_MAX];  /* the address published ports listen on */
	uint32_t max_connections;           /* per service */
	uint32_t idle_timeout_s;            /* TCP streams */
	uint32_t udp_timeout_s;             /* UDP flows */
};

#define COORDCONF_DEFAULT_PATH "/etc/meshcoord/coord.yaml"
#define COORDCONF_DEFAULT_STATE_DIR "/var/lib/meshcoord"
/* In state_dir: what the server publishes now, for `meshcoord publish list` (publish.c). */
#define PUBLISH_STATUS_FILE "publish-status"
/* A status file older than this was left by a server that is not running (it rewrites the
 * file every 5 s at least): three missed rewrites. */
#define PUBLISH_STATUS_STALE_S 15
/* What a bare metrics_listen port binds to: only this host can scrape. */
#define COORDCONF_DEFAULT_METRICS_HOST "127.0.0.1"
/* The mesh's DNS domain: nodes answer <name>.mesh.internal. ".internal" is reserved for
 * private use (ICANN, 2024), so it never collides with a public name. */
#define COORDCONF_DEFAULT_DNS_DOMAIN "mesh.internal"

struct coord_config {
	/* Control listener (TCP), default 0.0.0.0:CONTROL_DEFAULT_PORT ("[::]:51821" for IPv6). */
	char listen_host[ENDPOINT_HOST_MAX];
	uint16_t listen_port;
	/* STUN listener (UDP), default 0.0.0.0:STUN_DEFAULT_PORT. */
	char stun_host[ENDPOINT_HOST_MAX];
	uint16_t stun_port;
	/* A second STUN listener (UDP, Binding only, no relay): default the STUN host on port
	 * COORDCONF_DEFAULT_STUN_ALT_PORT (3478 if STUN itself is on 3479); port 0: off.
	 * stun_alt_explicit: configured, so failing to bind it is fatal (the default is not). */
	char stun_alt_host[ENDPOINT_HOST_MAX];
	uint16_t stun_alt_port;
	bool stun_alt_explicit;
	/* Relay limit per node in bytes/s (0: unlimited) and its burst in bytes (default one
	 * second at the rate, at least one relay frame). */
	uint32_t relay_rate_limit;
	uint32_t relay_burst;
	/* A node's UDP binding is used this long after its last BIND; then its TCP session. */
	uint32_t relay_bind_fresh_s;
	/* The address nodes use to reach the control listener; goes into join keys. Required. */
	/* Access rules (coord/policy.h); empty: none, every node may reach every other. */
	char policy_file[COORDCONF_PATH_MAX];
	char public_host[ENDPOINT_HOST_MAX];
	uint16_t public_port;
	/* Holds coord.key (0600) and registry.db. */
	char state_dir[COORDCONF_PATH_MAX];
	/* The Prometheus metrics page (HTTP GET /metrics); port 0: off (the default). A bare
	 * port means 127.0.0.1; another address only when written out. */
	char metrics_host[ENDPOINT_HOST_MAX];
	uint16_t metrics_port;
	/* dns_domain: sent to every node (CONTROL_MSG_DNS), which answers <name>.<domain>. */
	char dns_domain[CONTROL_DOMAIN_MAX + 1];
	/* log_level: given in the file (has_log_level), else the command line's. */
	bool has_log_level;
	enum log_level log_level;
	/* auto_approve_routes: advertised routes approved without an administrator. */
	struct route_auto_rule auto_approve[COORDCONF_MAX_AUTO_APPROVE];
	size_t n_auto_approve;
	struct coord_publish_config publish;
};

/* Parses YAML from memory (no file system access: the fuzz target may call it). */
bool coordconf_parse(struct coord_config *cfg, const char *source_name, const char *text, size_t len, char *err,
		     size_t err_len);
bool coordconf_load(struct coord_config *cfg, const char *path, char *err, size_t err_len);

/* The value of auto_approve_routes (coordconf_routes.c), after its key. */
bool coordconf_parse_auto_approve(struct yamlread *r, struct coord_config *cfg);

/* The value of publish (coordconf_publish.c), after its key. */
bool coordconf_parse_publish(struct yamlread *r, struct coord_config *cfg);
/* "a-b" or "a" into lo..hi (1..65535, lo <= hi). */
bool coordconf_port_range_parse(const char *s, uint16_t *lo, uint16_t *hi);

/* "<state_dir>/coord.key" and "<state_dir>/registry.db"; false if the path is too long. */
bool coordconf_key_path(const struct coord_config *cfg, char *out, size_t cap);
bool coordconf_db_path(const struct coord_config *cfg, char *out, size_t cap);

#endif
