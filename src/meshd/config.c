/* The node's YAML configuration: the node schema, read strictly through core/yamlread. */
#include "meshd/config.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/keys.h"
#include "core/yamlread.h"

enum {
	CONFIG_FILE_MAX = 1 << 20,          /* a config with CONFIG_MAX_PEERS peers is ~400 KiB */
	CONFIG_MAX_KEEPALIVE_S = 3600,      /* beyond an hour no NAT mapping survives anyway */
	CONFIG_IPV6_MIN_MTU = 1280,         /* RFC 8200: the kernel drops IPv6 below this */
	CONFIG_DEFAULT_NAME_LEN = 8,        /* key prefix used as a peer name: short, unique enough */
	CONFIG_PEERS_INITIAL_CAP = 4,       /* most nodes list a handful of peers; grows by doubling */
	CONFIG_FILE_PRIVATE_BITS = 0077,    /* a file holding preshared keys must be owner-only */
	CONFIG_FILE_GROUP_OTHER_READ = 0044, /* to say "readable" rather than just "accessible" */
};

static const char config_default_interface[] = "mesh0";

enum root_key {
	ROOT_INTERFACE, ROOT_PRIVATE_KEY_FILE, ROOT_LISTEN_PORT, ROOT_ADDRESS, ROOT_MTU, ROOT_PEERS, ROOT_STATE_DIR,
	ROOT_JOIN_KEY_FILE, ROOT_CONTROL_SOCKET, ROOT_CONTROL_GROUP, ROOT_COOKIE_THRESHOLD, ROOT_MAX_PEERS, ROOT_USER, ROOT_LOG_LEVEL,
	ROOT_DNS, ROOT_DNS_RESOLVED,
	ROOT_ADVERTISE_ROUTES, ROOT_ADVERTISE_EXIT_NODE, ROOT_SNAT_ROUTES, ROOT_EXIT_NODE, ROOT_EXIT_NODE_ALLOW_LAN, ROOT_PUBLISH, ROOT_N
};
static const char *const root_keys[ROOT_N] = {
	[ROOT_INTERFACE] = "interface",
	[ROOT_PRIVATE_KEY_FILE] = "private_key_file",
	[ROOT_LISTEN_PORT] = "listen_port",
	[ROOT_ADDRESS] = "address",
	[ROOT_MTU] = "mtu",
	[ROOT_PEERS] = "peers",
	[ROOT_STATE_DIR] = "state_dir",
	[ROOT_JOIN_KEY_FILE] = "join_key_file",
	[ROOT_CONTROL_SOCKET] = "control_socket",
	[ROOT_CONTROL_GROUP] = "control_group",
	[ROOT_COOKIE_THRESHOLD] = "cookie_threshold",
	[ROOT_MAX_PEERS] = "max_peers",
	[ROOT_USER] = "user",
	[ROOT_LOG_LEVEL] = "log_level",
	[ROOT_DNS] = "dns",
	[ROOT_DNS_RESOLVED] = "dns_resolved",
	[ROOT_ADVERTISE_ROUTES] = "advertise_routes",
	[ROOT_ADVERTISE_EXIT_NODE] = "advertise_exit_node",
	[ROOT_SNAT_ROUTES] = "snat_routes",
	[ROOT_EXIT_NODE] = "exit_node",
	[ROOT_EXIT_NODE_ALLOW_LAN] = "exit_node_allow_lan",
	[ROOT_PUBLISH] = "publish",
};

/* systemd's RuntimeDirectory=meshd; one socket per interface so two meshds can coexist. */
static const char config_control_socket_dir[] = "/run/meshd";

enum peer_key { PEER_PUBLIC_KEY, PEER_PRESHARED_KEY, PEER_ENDPOINT, PEER_ALLOWED_IPS, PEER_NAME, PEER_KEEPALIVE, PEER_N };
static const char *const peer_keys[PEER_N] = {
	[PEER_PUBLIC_KEY] = "public_key",
	[PEER_PRESHARED_KEY] = "preshared_key",
	[PEER_ENDPOINT] = "endpoint",
	[PEER_ALLOWED_IPS] = "allowed_ips",
	[PEER_NAME] = "name",
	[PEER_KEEPALIVE] = "persistent_keepalive",
};

/* Where each peer's identifying values were written, for "also used at line N" messages. */
struct peer_origin {
	yaml_mark_t key_mark;
	yaml_mark_t name_mark;
};

/* One allowed_ips entry and where it was written: duplicates across peers are found by
 * sorting these once at the end (a peer list can hold tens of thousands of prefixes). */
struct prefix_origin {
	struct ip_prefix prefix;
	yaml_mark_t mark;
	size_t peer;
};

struct cfg_parser {
	struct yamlread r;
	struct config *cfg;
	size_t peers_cap;
	struct peer_origin *peer_origins;
	struct prefix_origin *prefixes;
	size_t n_prefixes, prefixes_cap;
};

/* Linux dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace. We also
 * keep to printable ASCII so the name reads the same in every log and shell. */
static bool interface_name_valid(const char *s, size_t len)
{
	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '/' || s[i] == ':')
			return false;
	}
	return true;
}

/* Group names as shadow's useradd takes them: letters, digits, '.', '_', '-', not leading '-'. */
static bool group_name_valid(const char *s, size_t len)
{
	if (len == 0 || len >= CONFIG_GROUP_MAX || s[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

/* Reads key's value as an account name (user or group: useradd's rule) into out
 * (CONFIG_GROUP_MAX bytes); `what` names it in the error ("group", "user"). */
static bool read_account_name(struct yamlread *r, const char *key, const char *what, char out[CONFIG_GROUP_MAX])
{
	char q[YAMLREAD_QUOTE_BUF];
	if (!yamlread_scalar(r, key))
		return false;
	if (!group_name_valid(yamlread_value(r), yamlread_len(r))) {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not a %s name (1 to %d letters, digits, '.', '_', '-')",
			      key, yamlread_quote(yamlread_value(r), yamlread_len(r), q), what, CONFIG_GROUP_MAX - 1);
		return false;
	}
	memcpy(out, yamlread_value(r), yamlread_len(r) + 1);
	return true;
}

static bool peer_name_valid(const char *s, size_t len);

/* true or false, nothing else: "yes", "on" and 1 are YAML 1.1 booleans some readers take
 * and others do not; one spelling avoids the surprise. */
static bool read_bool(struct yamlread *r, const char *key, bool *out)
{
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	if (strcmp(yamlread_value(r), "true") == 0 || strcmp(yamlread_value(r), "false") == 0) {
		*out = yamlread_value(r)[0] == 't';
		return true;
	}
	yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not true or false", key,
		      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
	return false;
}

/* exit_node: a node name as the coordinator gives them, or "none". */
static bool read_node_name(struct yamlread *r, const char *key, char out[CONFIG_NODE_NAME_MAX])
{
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	if (!peer_name_valid(yamlread_value(r), yamlread_len(r))) {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not a node name (letters, digits, '.', '_', '-')", key,
			      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
		return false;
	}
	if (strcmp(yamlread_value(r), "none") == 0)
		out[0] = '\0';
	else
		memcpy(out, yamlread_value(r), yamlread_len(r) + 1);
	return true;
}

bool config_default_control_socket(const char *ifname, char *out, size_t out_len)
{
	int n = snprintf(out, out_len, "%s/%s.sock", config_control_socket_dir, ifname);
	return n > 0 && (size_t)n < out_len;
}

static bool peer_name_valid(const char *s, size_t len)
{
	if (len == 0 || len >= CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return true;
}

static bool prefix_equal(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->bits == b->bits && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool prefix_has_host_bits(const struct ip_prefix *pfx, struct ip_prefix *masked)
{
	*masked = *pfx;
	for (size_t i = 0; i < sizeof(masked->addr); i++) {
		size_t bit = i * 8;

		if (bit >= pfx->bits)
			masked->addr[i] = 0;
		else if (pfx->bits - bit < 8)
			masked->addr[i] &= (uint8_t)(0xff << (8 - (pfx->bits - bit)));
	}
	return !prefix_equal(pfx, masked);
}

/* Where get_prefix_list puts the prefixes of one list. */
struct prefix_sink {
	bool network;         /* entries are networks: no host bits */
	struct ip_prefix *list;
	yaml_mark_t *marks;   /* where each entry was written, or NULL */
	size_t max;
	size_t *n;
};

/* One prefix scalar (the current event), for yamlread_list. */
static bool add_prefix(struct yamlread *r, const char *key, void *ctx)
{
	const struct prefix_sink *sink = ctx;
	char q[YAMLREAD_QUOTE_BUF], buf[IP_PREFIX_STR_MAX], host_buf[IP_PREFIX_STR_MAX];
	struct ip_prefix pfx, masked, host;
	const char *s = yamlread_value(r);
	size_t len = yamlread_len(r);

	if (memchr(s, '\0', len) || len >= sizeof(buf) || !ip_prefix_parse(s, &pfx)) {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not an IP address or prefix (e.g. %s)", key,
			      yamlread_quote(s, len, q),
			      sink->network ? "100.64.0.2/32 or fd00::/64" : "100.64.0.1/10");
		return false;
	}
	/* An allowed_ips entry is a network: "10.1.2.3/24" is almost always a typo for one of
	 * "10.1.2.0/24" or "10.1.2.3/32", and guessing which would route someone's traffic. */
	if (sink->network && prefix_has_host_bits(&pfx, &masked)) {
		host = pfx;
		host.bits = pfx.family == AF_INET ? 32 : 128;
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' has host bits set; did you mean %s or %s?", key,
			      yamlread_quote(s, len, q), ip_prefix_format(&masked, buf, sizeof(buf)),
			      ip_prefix_format(&host, host_buf, sizeof(host_buf)));
		return false;
	}
	for (size_t i = 0; i < *sink->n; i++) {
		if (prefix_equal(&sink->list[i], &pfx)) {
			yamlread_fail(r, r->ev.start_mark, "'%s': %s is listed twice", key,
				      ip_prefix_format(&pfx, buf, sizeof(buf)));
			return false;
		}
	}
	if (*sink->n >= sink->max) {
		yamlread_fail(r, r->ev.start_mark, "'%s' has too many entries (at most %zu)", key, sink->max);
		return false;
	}
	if (sink->marks)
		sink->marks[*sink->n] = r->ev.start_mark;
	sink->list[(*sink->n)++] = pfx;
	return true;
}

/* A prefix list: a single prefix or a list of them, with positions into marks[] when the
 * caller wants them. */
static bool get_prefix_list(struct yamlread *r, const char *key, bool network, struct ip_prefix *list,
			    yaml_mark_t *marks, size_t max, size_t *n)
{
	struct prefix_sink sink = { .network = network, .list = list, .marks = marks, .max = max, .n = n };

	*n = 0;
	return yamlread_list(r, key, "prefix", "prefixes", add_prefix, &sink);
}

static bool grow_peers(struct cfg_parser *p)
{
	struct config *cfg = p->cfg;
	size_t cap = p->peers_cap ? p->peers_cap * 2 : CONFIG_PEERS_INITIAL_CAP;
	struct config_peer *peers;
	struct peer_origin *origins;

	if (cap > CONFIG_MAX_PEERS)
		cap = CONFIG_MAX_PEERS;
	/* Not realloc: the old block holds preshared keys and must be wiped before it is freed. */
	peers = calloc(cap, sizeof(*peers));
	origins = calloc(cap, sizeof(*origins));
	if (!peers || !origins) {
		free(peers);
		free(origins);
		return false;
	}
	if (cfg->peers) {
		memcpy(peers, cfg->peers, cfg->n_peers * sizeof(*peers));
		sodium_memzero(cfg->peers, p->peers_cap * sizeof(*peers));
		free(cfg->peers);
	}
	if (p->peer_origins) {
		memcpy(origins, p->peer_origins, cfg->n_peers * sizeof(*origins));
		free(p->peer_origins);
	}
	cfg->peers = peers;
	p->peer_origins = origins;
	p->peers_cap = cap;
	return true;
}

static bool record_prefixes(struct cfg_parser *p, const struct config_peer *peer, size_t peer_idx,
			    const yaml_mark_t *marks)
{
	if (p->n_prefixes + peer->n_allowed_ips > p->prefixes_cap) {
		size_t cap = p->prefixes_cap ? p->prefixes_cap : 64;
		struct prefix_origin *grown;

		while (cap < p->n_prefixes + peer->n_allowed_ips)
			cap *= 2;
		grown = realloc(p->prefixes, cap * sizeof(*grown));
		if (!grown)
			return false;
		p->prefixes = grown;
		p->prefixes_cap = cap;
	}
	for (size_t i = 0; i < peer->n_allowed_ips; i++) {
		struct prefix_origin *o = &p->prefixes[p->n_prefixes++];

		o->prefix = peer->allowed_ips[i];
		o->mark = marks[i];
		o->peer = peer_idx;
	}
	return true;
}

static bool parse_peer(struct cfg_parser *p, yaml_mark_t start)
{
	struct yamlread *r = &p->r;
	struct config *cfg = p->cfg;
	struct config_peer *peer;
	struct peer_origin *origin;
	yaml_mark_t prefix_marks[CONFIG_MAX_ALLOWED_IPS];
	size_t seen[PEER_N] = { 0 };
	char b64[KEY_BASE64_LEN + 1];
	size_t idx, peer_idx = cfg->n_peers;
	bool done;

	if (cfg->n_peers >= CONFIG_MAX_PEERS) {
		yamlread_fail(r, start, "too many peers (at most %d)", CONFIG_MAX_PEERS);
		return false;
	}
	if (cfg->n_peers == p->peers_cap && !grow_peers(p)) {
		yamlread_fail(r, start, "out of memory");
		return false;
	}
	peer = &cfg->peers[peer_idx];
	origin = &p->peer_origins[peer_idx];
	memset(peer, 0, sizeof(*peer));

	for (;;) {
		if (!yamlread_key(r, peer_keys, PEER_N, seen, "peer ", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum peer_key)idx) {
		case PEER_PUBLIC_KEY:
		case PEER_PRESHARED_KEY: {
			uint8_t *dst = idx == PEER_PUBLIC_KEY ? peer->public_key : peer->psk;

			if (!yamlread_scalar(r, peer_keys[idx]))
				return false;
			/* The value is never echoed: a private key pasted into the wrong field must
			 * not end up in a log. */
			if (!key_from_base64(dst, yamlread_value(r), yamlread_len(r))) {
				yamlread_fail(r, r->ev.start_mark,
					      "'%s' is not a key (expected %d characters of base64)", peer_keys[idx],
					      KEY_BASE64_LEN);
				return false;
			}
			if (idx == PEER_PUBLIC_KEY)
				origin->key_mark = r->ev.start_mark;
			else
				peer->has_psk = true;
			break;
		}
		case PEER_ENDPOINT: {
			char q[YAMLREAD_QUOTE_BUF];

			if (!yamlread_scalar(r, peer_keys[idx]))
				return false;
			if (!endpoint_parse(yamlread_value(r), peer->endpoint_host, sizeof(peer->endpoint_host),
					    &peer->endpoint_port)) {
				yamlread_fail(r, r->ev.start_mark,
					"'endpoint': '%s' is not host:port or [IPv6]:port with a port from 1 to 65535",
					yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			peer->has_endpoint = true;
			break;
		}
		case PEER_ALLOWED_IPS:
			if (!get_prefix_list(r, peer_keys[idx], true, peer->allowed_ips, prefix_marks,
					     CONFIG_MAX_ALLOWED_IPS, &peer->n_allowed_ips))
				return false;
			break;
		case PEER_NAME: {
			char q[YAMLREAD_QUOTE_BUF];

			if (!yamlread_scalar(r, peer_keys[idx]))
				return false;
			if (!peer_name_valid(yamlread_value(r), yamlread_len(r))) {
				yamlread_fail(r, r->ev.start_mark,
					"'name': '%s' must be 1 to %d letters, digits, '-', '_' or '.'",
					yamlread_quote(yamlread_value(r), yamlread_len(r), q), CONFIG_NAME_MAX - 1);
				return false;
			}
			memcpy(peer->name, yamlread_value(r), yamlread_len(r) + 1);
			origin->name_mark = r->ev.start_mark;
			break;
		}
		case PEER_KEEPALIVE:
			if (!yamlread_uint(r, peer_keys[idx], 0, CONFIG_MAX_KEEPALIVE_S, &peer->persistent_keepalive_s))
				return false;
			break;
		case PEER_N:
			return false;
		}
	}

	if (!seen[PEER_PUBLIC_KEY] || !seen[PEER_ALLOWED_IPS]) {
		yamlread_fail(r, start, "peer is missing required key '%s'",
			!seen[PEER_PUBLIC_KEY] ? "public_key" : "allowed_ips");
		return false;
	}
	if (!seen[PEER_NAME]) {
		key_to_base64(b64, peer->public_key);
		memcpy(peer->name, b64, CONFIG_DEFAULT_NAME_LEN);
		peer->name[CONFIG_DEFAULT_NAME_LEN] = '\0';
		origin->name_mark = start;
	}
	for (size_t i = 0; i < peer_idx; i++) {
		const struct config_peer *other = &cfg->peers[i];

		if (memcmp(other->public_key, peer->public_key, WIRE_KEY_LEN) == 0) {
			yamlread_fail(r, origin->key_mark, "peer public_key is already used by peer '%s' (line %zu)",
				other->name, p->peer_origins[i].key_mark.line + 1);
			return false;
		}
		if (strcmp(other->name, peer->name) == 0) {
			yamlread_fail(r, origin->name_mark, "peer name '%s' is already used (line %zu)", peer->name,
				p->peer_origins[i].name_mark.line + 1);
			return false;
		}
	}
	if (!record_prefixes(p, peer, peer_idx, prefix_marks)) {
		yamlread_fail(r, start, "out of memory");
		return false;
	}
	cfg->n_peers++;
	return true;
}

static bool parse_peers(struct cfg_parser *p)
{
	struct yamlread *r = &p->r;
	bool has_items;
	int item;

	if (!yamlread_mapping_list_begin(r, "peers", "peers", &has_items))
		return false;
	/* "peers:" with nothing after it (every peer commented out) means no peers. */
	if (!has_items)
		return true;
	while ((item = yamlread_mapping_list_next(r, "each peer must be a mapping (public_key: ..., allowed_ips: ...)")) > 0)
		if (!parse_peer(p, r->ev.start_mark))
			return false;
	return item == 0;
}

static int prefix_origin_cmp(const void *a, const void *b)
{
	const struct prefix_origin *x = a, *y = b;
	int c;

	if (x->prefix.family != y->prefix.family)
		return x->prefix.family < y->prefix.family ? -1 : 1;
	if (x->prefix.bits != y->prefix.bits)
		return x->prefix.bits < y->prefix.bits ? -1 : 1;
	c = memcmp(x->prefix.addr, y->prefix.addr, sizeof(x->prefix.addr));
	if (c)
		return c;
	return x->mark.index < y->mark.index ? -1 : x->mark.index > y->mark.index;
}

/* Two peers owning the very same prefix leave cryptokey routing ambiguous (which peer gets
 * the packet, and whose packets are accepted from it): refuse rather than pick one. */
static bool check_prefix_owners(struct cfg_parser *p)
{
	const struct prefix_origin *dup = NULL, *first = NULL;
	char buf[IP_PREFIX_STR_MAX];

	if (p->n_prefixes < 2)
		return true;
	qsort(p->prefixes, p->n_prefixes, sizeof(*p->prefixes), prefix_origin_cmp);
	for (size_t i = 1; i < p->n_prefixes; i++) {
		const struct prefix_origin *a = &p->prefixes[i - 1], *b = &p->prefixes[i];

		/* Report the repetition that comes first in the file. */
		if (prefix_equal(&a->prefix, &b->prefix) && (!dup || b->mark.index < dup->mark.index)) {
			dup = b;
			first = a;
		}
	}
	if (!dup)
		return true;
	yamlread_fail(&p->r, dup->mark, "'allowed_ips': %s is already claimed by peer '%s' (line %zu)",
		ip_prefix_format(&dup->prefix, buf, sizeof(buf)), p->cfg->peers[first->peer].name,
		first->mark.line + 1);
	return false;
}

/* A scalar that is one of two words: yes (on) or no (off). */
static bool read_switch(struct yamlread *r, const char *key, const char *yes, const char *no, bool *out)
{
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	if (!strcmp(yamlread_value(r), yes) || !strcmp(yamlread_value(r), no)) {
		*out = !strcmp(yamlread_value(r), yes);
		return true;
	}
	yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not %s or %s", key,
		      yamlread_quote(yamlread_value(r), yamlread_len(r), q), yes, no);
	return false;
}

static bool parse_root(struct cfg_parser *p, yaml_mark_t start)
{
	struct yamlread *r = &p->r;
	struct config *cfg = p->cfg;
	size_t seen[ROOT_N] = { 0 };
	yaml_mark_t mtu_mark = start;
	char q[YAMLREAD_QUOTE_BUF];
	unsigned int v;
	size_t idx;
	bool done;

	for (;;) {
		if (!yamlread_key(r, root_keys, ROOT_N, seen, "", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum root_key)idx) {
		case ROOT_INTERFACE:
			if (!yamlread_scalar(r, root_keys[idx]))
				return false;
			if (!interface_name_valid(yamlread_value(r), yamlread_len(r))) {
				yamlread_fail(r, r->ev.start_mark,
					"'interface': '%s' is not a valid interface name (1 to %d characters, no '/', ':' or spaces)",
					yamlread_quote(yamlread_value(r), yamlread_len(r), q), IFNAMSIZ - 1);
				return false;
			}
			memcpy(cfg->interface, yamlread_value(r), yamlread_len(r) + 1);
			break;
		case ROOT_PRIVATE_KEY_FILE:
			if (!yamlread_string(r, root_keys[idx], cfg->private_key_file, sizeof(cfg->private_key_file)))
				return false;
			break;
		case ROOT_LISTEN_PORT:
			if (!yamlread_uint(r, root_keys[idx], 0, UINT16_MAX, &v))
				return false;
			cfg->listen_port = (uint16_t)v;
			break;
		case ROOT_ADDRESS:
			if (!get_prefix_list(r, root_keys[idx], false, cfg->addresses, NULL, CONFIG_MAX_ADDRESSES,
					     &cfg->n_addresses))
				return false;
			break;
		case ROOT_MTU:
			if (!yamlread_uint(r, root_keys[idx], CONFIG_MIN_MTU, CONFIG_MAX_MTU, &cfg->mtu))
				return false;
			mtu_mark = r->ev.start_mark;
			break;
		case ROOT_PEERS:
			if (!parse_peers(p))
				return false;
			break;
		case ROOT_STATE_DIR:
			if (!yamlread_string(r, root_keys[idx], cfg->state_dir, sizeof(cfg->state_dir)))
				return false;
			break;
		case ROOT_JOIN_KEY_FILE:
			if (!yamlread_string(r, root_keys[idx], cfg->join_key_file, sizeof(cfg->join_key_file)))
				return false;
			break;
		case ROOT_CONTROL_SOCKET:
			if (!yamlread_scalar(r, root_keys[idx]))
				return false;
			if (yamlread_len(r) >= sizeof(cfg->control_socket) || yamlread_value(r)[0] != '/' ||
			    memchr(yamlread_value(r), '\0', yamlread_len(r))) {
				yamlread_fail(r, r->ev.start_mark,
					"'control_socket': '%s' must be an absolute path of at most %d bytes",
					yamlread_quote(yamlread_value(r), yamlread_len(r), q), CONFIG_SOCKET_PATH_MAX - 1);
				return false;
			}
			memcpy(cfg->control_socket, yamlread_value(r), yamlread_len(r) + 1);
			break;
		case ROOT_CONTROL_GROUP:
			if (!read_account_name(r, root_keys[idx], "group", cfg->control_group))
				return false;
			break;
		case ROOT_COOKIE_THRESHOLD:
			if (!yamlread_uint(r, root_keys[idx], 0, CONFIG_MAX_COOKIE_THRESHOLD, &cfg->cookie_threshold))
				return false;
			break;
		case ROOT_USER:
			if (!read_account_name(r, root_keys[idx], "user", cfg->user))
				return false;
			break;
		case ROOT_MAX_PEERS:
			if (!yamlread_uint(r, root_keys[idx], 1, CONFIG_MAX_MAX_PEERS, &cfg->max_peers))
				return false;
			break;
		case ROOT_LOG_LEVEL:
			if (!yamlread_scalar(r, root_keys[idx]))
				return false;
			if (!log_level_parse(yamlread_value(r), &cfg->log_level)) {
				yamlread_fail(r, r->ev.start_mark, "'log_level': '%s' is not one of error, warn, info, debug",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			cfg->has_log_level = true;
			break;
		case ROOT_DNS:
			if (!read_switch(r, root_keys[idx], "on", "off", &cfg->dns))
				return false;
			break;
		case ROOT_DNS_RESOLVED:
			if (!read_switch(r, root_keys[idx], "auto", "off", &cfg->dns_resolved))
				return false;
			break;
		case ROOT_ADVERTISE_ROUTES:
			if (!get_prefix_list(r, root_keys[idx], true, cfg->advertise_routes, NULL,
					     CONFIG_MAX_ADVERTISE_ROUTES, &cfg->n_advertise_routes))
				return false;
			for (size_t i = 0; i < cfg->n_advertise_routes; i++) {
				if (cfg->advertise_routes[i].bits == 0) {
					yamlread_fail(r, r->ev.start_mark,
						      "'advertise_routes': a default route is an exit offer: use 'advertise_exit_node: true'");
					return false;
				}
			}
			break;
		case ROOT_ADVERTISE_EXIT_NODE:
			if (!read_bool(r, root_keys[idx], &cfg->advertise_exit_node))
				return false;
			break;
		case ROOT_SNAT_ROUTES:
			if (!read_bool(r, root_keys[idx], &cfg->snat_routes))
				return false;
			break;
		case ROOT_EXIT_NODE:
			if (!read_node_name(r, root_keys[idx], cfg->exit_node))
				return false;
			break;
		case ROOT_EXIT_NODE_ALLOW_LAN:
			if (!read_bool(r, root_keys[idx], &cfg->exit_node_allow_lan))
				return false;
			break;
		case ROOT_PUBLISH:
			if (!config_parse_publish(r, cfg))
				return false;
			break;
		case ROOT_N:
			return false;
		}
	}
	/* The interface name is at most IFNAMSIZ - 1 bytes, so the default always fits. */
	if (!seen[ROOT_CONTROL_SOCKET] &&
	    !config_default_control_socket(cfg->interface, cfg->control_socket, sizeof(cfg->control_socket)))
		return false;

	/* With a state directory the key defaults to <state_dir>/node.key and the addresses may
	 * come from a coordinator (main checks that one is configured). */
	if (!seen[ROOT_STATE_DIR] && (!seen[ROOT_PRIVATE_KEY_FILE] || !seen[ROOT_ADDRESS])) {
		yamlread_fail(r, start, "missing required key '%s'",
			!seen[ROOT_PRIVATE_KEY_FILE] ? "private_key_file" : "address");
		return false;
	}
	if (cfg->mtu < CONFIG_IPV6_MIN_MTU) {
		for (size_t i = 0; i < cfg->n_addresses; i++) {
			char buf[IP_PREFIX_STR_MAX];

			if (cfg->addresses[i].family != AF_INET6)
				continue;
			yamlread_fail(r, mtu_mark, "'mtu' %u is below %d, the IPv6 minimum, but address %s is IPv6",
				cfg->mtu, CONFIG_IPV6_MIN_MTU, ip_prefix_format(&cfg->addresses[i], buf, sizeof(buf)));
			return false;
		}
	}
	return check_prefix_owners(p);
}

static void config_set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->interface, config_default_interface, sizeof(config_default_interface));
	cfg->listen_port = CONFIG_DEFAULT_LISTEN_PORT;
	cfg->mtu = CONFIG_DEFAULT_MTU;
	cfg->cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	cfg->max_peers = CONFIG_DEFAULT_MAX_PEERS;
	cfg->dns = true;
	cfg->dns_resolved = true;
	cfg->snat_routes = true;
	cfg->log_level = LOG_LEVEL_INFO;
}

static bool parse_document(struct cfg_parser *p)
{
	yaml_mark_t start;

	return yamlread_begin(&p->r, "configuration", "address: ...", &start) && parse_root(p, start) &&
	       yamlread_end(&p->r, "configuration");
}

bool config_parse(struct config *cfg, const char *source_name, const char *text, size_t len,
		  char *err, size_t err_len)
{
	struct cfg_parser p;
	bool ok;

	config_set_defaults(cfg);
	memset(&p, 0, sizeof(p));
	p.cfg = cfg;
	if (!yamlread_init(&p.r, source_name ? source_name : "config", text, len, err, err_len))
		return false;

	ok = parse_document(&p);
	if (!ok && !p.r.failed) {
		const yaml_mark_t top = { 0 }; /* line 1, column 1 */

		yamlread_fail(&p.r, top, "invalid configuration");
	}

	yamlread_cleanup(&p.r);
	free(p.peer_origins);
	free(p.prefixes);
	if (!ok) {
		if (cfg->peers)
			sodium_memzero(cfg->peers, p.peers_cap * sizeof(*cfg->peers));
		free(cfg->peers);
		config_set_defaults(cfg);
	}
	return ok;
}

/* A relative path (private_key_file, state_dir, join_key_file) is taken relative to the
 * config file's directory, so the daemon finds it whatever its working directory is
 * (systemd starts it in "/"). */
static bool resolve_path(char file[CONFIG_PATH_MAX], const char *key, const char *path, char *err, size_t err_len)
{
	const char *slash = strrchr(path, '/');
	char joined[CONFIG_PATH_MAX];
	int n;

	if (file[0] == '\0' || file[0] == '/' || !slash)
		return true;
	n = snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - path), path, file);
	if (n < 0 || (size_t)n >= sizeof(joined)) {
		snprintf(err, err_len, "%s: %s path is too long once joined to the config directory", path, key);
		return false;
	}
	memcpy(file, joined, (size_t)n + 1);
	return true;
}

static bool resolve_key_path(struct config *cfg, const char *path, char *err, size_t err_len)
{
	return resolve_path(cfg->private_key_file, "private_key_file", path, err, err_len) &&
	       resolve_path(cfg->state_dir, "state_dir", path, err, err_len) &&
	       resolve_path(cfg->join_key_file, "join_key_file", path, err, err_len);
}

bool config_load(struct config *cfg, const char *path, char *err, size_t err_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	bool ok;

	config_set_defaults(cfg);
	if (!yamlread_load_file(path, CONFIG_FILE_MAX, &text, &len, &st, err, err_len))
		return false;
	ok = config_parse(cfg, path, text, len, err, err_len);
	sodium_memzero(text, len);
	free(text);
	if (!ok)
		return false;

	if (st.st_mode & CONFIG_FILE_PRIVATE_BITS) {
		for (size_t i = 0; i < cfg->n_peers; i++) {
			if (!cfg->peers[i].has_psk)
				continue;
			snprintf(err, err_len,
				 "%s: holds preshared keys but is %s by group or others (mode %04o); run: chmod 600 %s",
				 path, (st.st_mode & CONFIG_FILE_GROUP_OTHER_READ) ? "readable" : "accessible",
				 (unsigned int)(st.st_mode & 07777), path);
			config_free(cfg);
			return false;
		}
	}
	if (!resolve_key_path(cfg, path, err, err_len)) {
		config_free(cfg);
		return false;
	}
	return true;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	if (cfg->peers) {
		sodium_memzero(cfg->peers, cfg->n_peers * sizeof(*cfg->peers));
		free(cfg->peers);
	}
	cfg->peers = NULL;
	cfg->n_peers = 0;
}
