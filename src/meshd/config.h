/* The node's YAML configuration (see conf/meshd.yaml for a commented example).
 * Parsing is strict: unknown keys, bad values and duplicates are refused with
 * "file:line:col: what is wrong". */
#ifndef MESHD_CONFIG_H
#define MESHD_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ipaddr.h"
#include "core/log.h"
#include "core/wire.h"

enum {
	CONFIG_MAX_ADDRESSES = 8,        /* overlay addresses of this node (v4 + v6 and a few spare) */
	CONFIG_MAX_ALLOWED_IPS = 64,     /* prefixes one peer may own */
	CONFIG_MAX_PEERS = 1024,         /* static peers; the coordinator will take over beyond a few */
	CONFIG_NAME_MAX = 64,
	CONFIG_DEFAULT_LISTEN_PORT = 51820,
	/* 1500-byte path minus outer IPv6 (40) + UDP (8) + data header (16) + tag (16) + the
	 * relay's header (36) = 1384: a full packet crosses the relay unfragmented too (at 1420,
	 * every relayed full-size packet was split in two and the relay ran at half speed). */
	CONFIG_DEFAULT_MTU = 1384,
	CONFIG_MIN_MTU = 576,            /* IPv4 minimum datagram every host must take (RFC 791) */
	CONFIG_MAX_MTU = 9000 - 80,      /* jumbo frames minus our overhead */
	CONFIG_PATH_MAX = 4096,
	/* A UNIX socket path lives in sockaddr_un.sun_path (108 bytes with its NUL on Linux). */
	CONFIG_SOCKET_PATH_MAX = 108,
	CONFIG_GROUP_MAX = 33,           /* a group name: 32 characters (useradd's limit) and NUL */
	/* Handshake initiations per second above which meshd answers with cookie replies instead
	 * (WireGuard's under-load mode): one initiation costs ~4 X25519 operations, so 500/s keeps
	 * handshakes to a small share of one core while every honest peer gets through at once. */
	CONFIG_DEFAULT_COOKIE_THRESHOLD = 500,
	CONFIG_MAX_COOKIE_THRESHOLD = 1000000,
	/* Peers a coordinator's map may give us (max_peers): room for the 10,000-node maps the
	 * benchmarks run (~1.2 KiB each when idle) with headroom; a map beyond it is a mistake
	 * or an attack, and the rest of it is ignored with one log line. */
	CONFIG_DEFAULT_MAX_PEERS = 16384,
	CONFIG_MAX_MAX_PEERS = 100000, /* what the state file can hold (state.h) */
	/* advertise_routes: a home has a LAN or three; the exit pair takes two of the
	 * coordinator's CONTROL_MAX_ROUTES (32) on top. */
	CONFIG_MAX_ADVERTISE_ROUTES = 16,
	CONFIG_NODE_NAME_MAX = 64, /* exit_node: a coordinator's node name (63) and NUL */
	CONFIG_MAX_PUBLISH = 16,   /* publish: services (CONTROL_MAX_PUBLISH) */
	CONFIG_IP_TEXT_MAX = 46,   /* INET6_ADDRSTRLEN */
};

struct config_peer {
	char name[CONFIG_NAME_MAX];       /* for logs; defaults to the key's first characters */
	uint8_t public_key[WIRE_KEY_LEN];
	bool has_psk;
	uint8_t psk[WIRE_KEY_LEN];
	bool has_endpoint;
	char endpoint_host[ENDPOINT_HOST_MAX];
	uint16_t endpoint_port;
	struct ip_prefix allowed_ips[CONFIG_MAX_ALLOWED_IPS];
	size_t n_allowed_ips;
	unsigned int persistent_keepalive_s; /* 0 = off */
};

/* publish: one service to publish on the coordinator's public address (publish.h). */
struct config_publish {
	char name[CONFIG_NODE_NAME_MAX];   /* a DNS label, [A-Za-z0-9._-] */
	char local_host[CONFIG_IP_TEXT_MAX]; /* a numeric address: where the service listens */
	uint16_t local_port;
	uint16_t public_port;
	uint8_t proto;                     /* 6 tcp (default) or 17 udp */
	bool proxy_protocol;               /* TCP: a PROXY v2 header first, with the client's address */
};

struct config {
	char interface[IFNAMSIZ];       /* default "mesh0" */
	/* Required unless state_dir is given; then it defaults to <state_dir>/node.key. */
	char private_key_file[CONFIG_PATH_MAX];
	/* Where a coordinator-managed node keeps its key and what the coordinator told it
	 * (addresses, peer map). With it, `address` may come from the coordinator. */
	char state_dir[CONFIG_PATH_MAX];
	char join_key_file[CONFIG_PATH_MAX]; /* a join key from 'meshcoord authkey create' */
	uint16_t listen_port;           /* default CONFIG_DEFAULT_LISTEN_PORT; 0 = any */
	struct ip_prefix addresses[CONFIG_MAX_ADDRESSES];
	size_t n_addresses;
	unsigned int mtu;               /* default CONFIG_DEFAULT_MTU */
	/* Initiations per second before cookie replies; 0 = always ask for a cookie first. */
	unsigned int cookie_threshold;  /* default CONFIG_DEFAULT_COOKIE_THRESHOLD */
	unsigned int max_peers;         /* coordinator peers at most; default CONFIG_DEFAULT_MAX_PEERS */
	struct config_peer *peers;      /* heap array, n_peers long */
	size_t n_peers;
	/* Where `meshd up` serves status/ping/netcheck; default /run/meshd/<interface>.sock. */
	char control_socket[CONFIG_SOCKET_PATH_MAX];
	/* A group whose members may use the control socket (mode 0660); "" = root only (0600). */
	char control_group[CONFIG_GROUP_MAX];
	/* Run as this user once everything needing root is open (privdrop.h); empty: stay. */
	char user[CONFIG_GROUP_MAX];
	/* log_level: given in the file (has_log_level), else --log-level's or info. */
	bool has_log_level;
	enum log_level log_level;
	/* dns: answer the mesh's names on 100.100.100.100 (with a coordinator); default on. */
	bool dns;
	/* dns_resolved: with systemd-resolved on the system bus, point the interface's DNS at
	 * us for the mesh's domain (auto, the default), or leave resolved alone (off). */
	bool dns_resolved;
	/* Subnet routes and exit nodes (meshroutes.h). */
	struct ip_prefix advertise_routes[CONFIG_MAX_ADVERTISE_ROUTES]; /* networks, no host bits */
	size_t n_advertise_routes;
	bool advertise_exit_node;     /* offer 0.0.0.0/0 and ::/0 */
	bool snat_routes;             /* default true: the LAN sees our LAN address */
	char exit_node[CONFIG_NODE_NAME_MAX]; /* "" = none */
	bool exit_node_allow_lan;     /* the main table's specific routes still win */
	struct config_publish publish[CONFIG_MAX_PUBLISH];
	size_t n_publish;
};

struct yamlread;
/* The value of publish (config_publish.c), after its key. */
bool config_parse_publish(struct yamlread *r, struct config *cfg);

/* The control socket of an interface when the config does not name one. False if too long. */
bool config_default_control_socket(const char *ifname, char *out, size_t out_len);

/* Parses YAML from memory. `source_name` is used in error messages. No file system or network
 * access (the fuzz target calls this). On failure err holds "name:line:col: message". */
bool config_parse(struct config *cfg, const char *source_name, const char *text, size_t len,
		  char *err, size_t err_len);
/* Reads and parses a file. */
bool config_load(struct config *cfg, const char *path, char *err, size_t err_len);
void config_free(struct config *cfg);

#endif
