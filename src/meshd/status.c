/* status: the node and its peers as JSON or a table (see status.h). */
#include "meshd/status.h"
#include "meshd/meshroutes.h"
#include "meshd/publish.h"

#include <ifaddrs.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ipaddr.h"
#include "core/keys.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/relayclient.h"

enum {
	STATUS_ADDR_MAX = 64,        /* "[v6]:port" or "v6/len" */
	STATUS_HOSTNAME_MAX = 256,   /* HOST_NAME_MAX is 64 on Linux; room */
};

enum status_path status_peer_path(const struct device *dev, const struct peer *p, uint64_t now_ms, int *direct)
{
	*direct = -1;
	if (!p->from_coordinator)
		return p->has_endpoint && peer_session_usable(p, now_ms) ? STATUS_PATH_DIRECT : STATUS_PATH_NONE;
	switch (probe_path_now(dev, p, now_ms, direct)) {
	case PATH_DIRECT:
		return STATUS_PATH_DIRECT;
	case PATH_RELAY:
		return STATUS_PATH_RELAY;
	default:
		return STATUS_PATH_NONE;
	}
}

void status_peer_address(const struct peer *p, char *buf, size_t len)
{
	if (p->n_allowed_ips == 0) {
		snprintf(buf, len, "-");
		return;
	}
	ip_prefix_format(&p->allowed_ips[0], buf, len);
	char *slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
}

static const char *path_word(enum status_path k)
{
	return k == STATUS_PATH_DIRECT ? "direct" : k == STATUS_PATH_RELAY ? "relay" : "none";
}

static void path_addr(const struct peer *p, int direct, char *buf, size_t len)
{
	const union sockaddr_inet *a = direct >= 0 ? &p->path.cand[direct].addr : &p->endpoint;
	sockaddr_format(&a->sa, buf, len);
}

/* Separator-joined list; JSON strings when json. */
static void prefixes(struct ipc_text *t, bool json, const struct ip_prefix *list, size_t n)
{
	char buf[STATUS_ADDR_MAX];
	if (json)
		ipc_text_printf(t, "[");
	for (size_t i = 0; i < n; i++) {
		ip_prefix_format(&list[i], buf, sizeof(buf));
		ipc_text_printf(t, "%s", i ? (json ? ", " : ",") : "");
		if (json)
			ipc_text_json_string(t, buf, strlen(buf));
		else
			ipc_text_printf(t, "%s", buf);
	}
	if (json)
		ipc_text_printf(t, "]");
	else if (n == 0)
		ipc_text_printf(t, "-");
}

/* The addresses really on the interface (configured or assigned by the coordinator). */
static size_t interface_addresses(const struct device *dev, struct ip_prefix *out, size_t max)
{
	struct ifaddrs *list, *ifa;
	size_t n = 0;
	if (getifaddrs(&list) < 0)
		return 0;
	for (ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
		if (!ifa->ifa_addr || !ifa->ifa_netmask || strcmp(ifa->ifa_name, dev->ifname) != 0)
			continue;
		struct ip_prefix *p = &out[n];
		memset(p, 0, sizeof(*p));
		const uint8_t *mask;
		size_t mask_len;
		if (ifa->ifa_addr->sa_family == AF_INET) {
			p->family = AF_INET;
			memcpy(p->addr, &((struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
			mask = (const uint8_t *)&((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr;
			mask_len = 4;
		} else if (ifa->ifa_addr->sa_family == AF_INET6) {
			const struct in6_addr *a6 = &((struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(a6))
				continue; /* the kernel's fe80:: on every link, not ours to report */
			p->family = AF_INET6;
			memcpy(p->addr, a6, 16);
			mask = (const uint8_t *)&((struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr;
			mask_len = 16;
		} else {
			continue;
		}
		unsigned int bits = 0;
		for (size_t i = 0; i < mask_len; i++)
			bits += (unsigned int)__builtin_popcount(mask[i]);
		p->bits = (uint8_t)bits;
		n++;
	}
	freeifaddrs(list);
	return n;
}

static void node_name(const struct device *dev, char *buf, size_t len)
{
	const char *assigned = coordclient_node_name(dev);
	if (assigned && assigned[0]) {
		snprintf(buf, len, "%s", assigned);
		return;
	}
	if (gethostname(buf, len) != 0 || !buf[0])
		snprintf(buf, len, "-");
	buf[len - 1] = '\0';
}

static const char *coordinator_word(const struct device *dev)
{
	return !dev->coord ? "none" : coordclient_ready(dev) ? "connected" : "disconnected";
}

static const char *relay_word(const struct device *dev, uint64_t now_ms)
{
	if (!dev->coord)
		return "none";
	if (relayclient_udp_ok(dev, now_ms))
		return "udp";
	return coordclient_ready(dev) ? "tcp" : "none";
}

/* The access rules in force: a line, or "access_rules": {...} with every rule. */
static void render_acl(const struct device *dev, bool json, struct ipc_text *t)
{
	const struct acl *a = &dev->acl;
	const char *origin = a->from_coordinator ? "coordinator" : "saved state";
	char buf[FILTER_RULE_STR_MAX];

	if (!json) {
		if (a->active)
			ipc_text_printf(t, "  access rules: %zu (from %s), %" PRIu64 " packets dropped\n", a->n_rules,
					origin, dev->counters.rx_acl_dropped);
		else
			ipc_text_printf(t, "  access rules: none (allow all)\n");
		return;
	}
	ipc_text_printf(t, "\"access_rules\": {\"active\": %s, \"from\": \"%s\", \"rules\": [",
			a->active ? "true" : "false", a->active ? origin : "none");
	for (size_t i = 0; i < a->n_rules; i++) {
		const struct filter_rule *r = &a->rules[i];
		struct ip_prefix sp = { .family = r->family == FILTER_FAMILY_IPV4 ? AF_INET : AF_INET6, .bits = r->src_bits };
		struct ip_prefix dp = { .family = sp.family, .bits = r->dst_bits };
		memcpy(sp.addr, r->src, sizeof(sp.addr));
		memcpy(dp.addr, r->dst, sizeof(dp.addr));
		ipc_text_printf(t, "%s{\"from\": \"%s\", ", i ? ", " : "", ip_prefix_format(&sp, buf, sizeof(buf)));
		ipc_text_printf(t, "\"to\": \"%s\", \"proto\": \"%s\", \"ports\": [%u, %u]}",
				ip_prefix_format(&dp, buf, sizeof(buf)), filter_proto_name(r->proto), r->port_lo,
				r->port_hi);
	}
	ipc_text_printf(t, "]}");
}

static void render_node(const struct device *dev, uint64_t now_ms, bool json, struct ipc_text *t)
{
	char name[STATUS_HOSTNAME_MAX], key[KEY_BASE64_LEN + 1];
	struct ip_prefix addrs[CONFIG_MAX_ADDRESSES * 2];
	size_t n_addrs = interface_addresses(dev, addrs, sizeof(addrs) / sizeof(addrs[0]));

	node_name(dev, name, sizeof(name));
	key_to_base64(key, dev->identity.public_key);
	if (json) {
		ipc_text_printf(t, "{\"node\": {\"name\": ");
		ipc_text_json_string(t, name, strlen(name));
		ipc_text_printf(t, ", \"interface\": ");
		ipc_text_json_string(t, dev->ifname, strlen(dev->ifname));
		ipc_text_printf(t, ", \"addresses\": ");
		prefixes(t, true, addrs, n_addrs);
		ipc_text_printf(t, ", \"public_key\": \"%s\", \"listen_port\": %u, \"coordinator\": \"%s\", "
				   "\"relay\": \"%s\"",
				key, dev->listen_port, coordinator_word(dev), relay_word(dev, now_ms));
		meshroutes_status_json(dev, t);
		publish_status_render(dev, true, t);
		ipc_text_printf(t, "}, \"counters\": {");
		/* Every device counter (device.h), as SIGUSR1 logs them. */
		const char *sep = "";
#define STATUS_COUNTER_JSON(name)                                                           \
		ipc_text_printf(t, "%s\"" #name "\": %" PRIu64, sep, dev->counters.name); \
		sep = ", ";
		DEVICE_COUNTERS(STATUS_COUNTER_JSON)
#undef STATUS_COUNTER_JSON
		ipc_text_printf(t, "}, ");
		render_acl(dev, true, t);
		ipc_text_printf(t, ", \"peers\": [");
		return;
	}
	ipc_text_printf(t, "node %s on %s, ", name, dev->ifname);
	prefixes(t, false, addrs, n_addrs);
	ipc_text_printf(t, "\n  public key %s, UDP port %u\n", key, dev->listen_port);
	if (dev->coord)
		ipc_text_printf(t, "  coordinator %s, relay %s\n", coordinator_word(dev),
				!strcmp(relay_word(dev, now_ms), "udp") ? "over UDP"
				: !strcmp(relay_word(dev, now_ms), "tcp") ? "over TCP (UDP to it does not work)"
									  : "not available");
	else
		ipc_text_printf(t, "  no coordinator (static peers only)\n");
	render_acl(dev, false, t);
	meshroutes_status_text(dev, t);
	publish_status_render(dev, false, t);
}

/* A peer's own addresses: with routes, its allowed IPs hold those after its two addresses. */
static size_t own_addresses(const struct peer *p)
{
	return p->routes && p->n_allowed_ips > 2 ? 2 : p->n_allowed_ips;
}

static void render_peer(const struct device *dev, const struct peer *p, uint64_t now_ms, int64_t now_unix, bool json,
			bool first, struct ipc_text *t)
{
	int direct;
	enum status_path kind = status_peer_path(dev, p, now_ms, &direct);
	char addr[STATUS_ADDR_MAX] = "";
	if (kind == STATUS_PATH_DIRECT)
		path_addr(p, direct, addr, sizeof(addr));
	bool have_rtt = direct >= 0 && p->path.cand[direct].rtt_ms != PATH_RTT_UNKNOWN;
	uint32_t rtt = have_rtt ? p->path.cand[direct].rtt_ms : 0;
	bool have_hs = p->last_handshake_unix > 0;
	int64_t ago = have_hs && now_unix > p->last_handshake_unix ? now_unix - p->last_handshake_unix : 0;

	if (json) {
		char key[KEY_BASE64_LEN + 1];
		key_to_base64(key, p->public_key);
		ipc_text_printf(t, "%s{\"name\": ", first ? "" : ", ");
		ipc_text_json_string(t, p->name, strlen(p->name));
		ipc_text_printf(t, ", \"public_key\": \"%s\", \"source\": \"%s\", \"addresses\": ", key,
				p->from_coordinator ? "coordinator" : p->satellite ? "satellite" : "static");
		prefixes(t, true, p->allowed_ips, own_addresses(p));
		meshroutes_peer_json(p, t);
		ipc_text_printf(t, ", \"path\": \"%s\", \"endpoint\": ", path_word(kind));
		if (addr[0])
			ipc_text_json_string(t, addr, strlen(addr));
		else
			ipc_text_printf(t, "null");
		if (have_hs)
			ipc_text_printf(t, ", \"last_handshake_unix\": %" PRId64 ", \"last_handshake_ago_s\": %" PRId64,
					p->last_handshake_unix, ago);
		else
			ipc_text_printf(t, ", \"last_handshake_unix\": null, \"last_handshake_ago_s\": null");
		if (have_rtt)
			ipc_text_printf(t, ", \"latency_ms\": %" PRIu32, rtt);
		else
			ipc_text_printf(t, ", \"latency_ms\": null");
		ipc_text_printf(t, ", \"rx_bytes\": %" PRIu64 ", \"tx_bytes\": %" PRIu64 "}", p->rx_bytes, p->tx_bytes);
		return;
	}
	char path[STATUS_ADDR_MAX + 8], hs[32], lat[32];
	snprintf(path, sizeof(path), "%s%s%s", path_word(kind), addr[0] ? " " : "", addr);
	if (have_hs)
		snprintf(hs, sizeof(hs), "%" PRId64 "s ago", ago);
	else
		snprintf(hs, sizeof(hs), "never");
	if (have_rtt)
		snprintf(lat, sizeof(lat), "%" PRIu32 " ms", rtt);
	else
		snprintf(lat, sizeof(lat), "-");
	struct ipc_text a;
	ipc_text_init(&a);
	prefixes(&a, false, p->allowed_ips, own_addresses(p));
	ipc_text_printf(t, "%-16s %-42s %-30s %-10s %-8s %12" PRIu64 " %12" PRIu64 "\n", p->name,
			a.failed || !a.buf ? "-" : a.buf, path, hs, lat, p->rx_bytes, p->tx_bytes);
	ipc_text_free(&a);
	if (p->satellite)
		ipc_text_printf(t, "%-16s satellite: a stock WireGuard device this node serves as its gateway\n", "");
	meshroutes_peer_text(p, t);
}

void status_render(const struct device *dev, uint64_t now_ms, bool json, struct ipc_text *t)
{
	int64_t now_unix = (int64_t)time(NULL);
	render_node(dev, now_ms, json, t);
	if (!json)
		ipc_text_printf(t, "\n%-16s %-42s %-30s %-10s %-8s %12s %12s\n", "PEER", "ADDRESSES", "PATH", "HANDSHAKE",
				"LATENCY", "RX BYTES", "TX BYTES");
	for (size_t i = 0; i < dev->n_peers; i++)
		render_peer(dev, dev->peers[i], now_ms, now_unix, json, i == 0, t);
	if (json)
		ipc_text_printf(t, "]}\n");
	else if (dev->n_peers == 0)
		ipc_text_printf(t, "(no peers)\n");
}
