/* The node's remembered coordinator state: parse, format, load, save. */
#include "meshd/state.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dns.h"
#include "core/fileio.h"
#include "core/keys.h"
#include "core/routes.h"
#include "core/yamlread.h"

enum {
	STATE_FILE_MODE = 0600,     /* names the coordinator and peers: private to the node */
	STATE_LINE_MAX = 2048,      /* a peer line with 16 endpoints fits in ~900 bytes, a routes
				     * line with 32 IPv6 prefixes in ~1,500 */
	STATE_MAX_TOKENS = 2 + CONTROL_MAX_ROUTES, /* "routes", key, prefixes (a peer line: 21) */
	STATE_ROUTES_LINE_MAX = 60 + CONTROL_MAX_ROUTES * 44,
	/* Worst case of one formatted peer line: "peer", key (44), name (63), IPv4 (15), IPv6 (39),
	 * separators and newline (~10), and each endpoint as " [IPv6]:port" (48). */
	STATE_PEER_LINE_MAX = 170 + CONTROL_MAX_ENDPOINTS * 48,
	/* Header, comment, coordinator line with a 253-character host name, and the self line. */
	STATE_HEADER_MAX = 640,
	/* "rule", two IPv6 prefixes (43 each), a protocol and "65535-65535", separators. */
	STATE_RULE_LINE_MAX = 128,
	/* "satellite", key and preshared key (44 each), name (63), IPv4 (15), IPv6 (39), separators. */
	STATE_SATELLITE_LINE_MAX = 260,
	PORT_MAX = 65535,
};

void state_init(struct node_state *st)
{
	memset(st, 0, sizeof(*st));
}

void state_free(struct node_state *st)
{
	free(st->peers);
	free(st->routes);
	free(st->rules);
	sodium_memzero(&st->satellites, sizeof(st->satellites));
	state_init(st);
}

bool state_set_rules(struct node_state *st, bool active, const struct filter_rule *rules, size_t n)
{
	struct filter_rule *copy = NULL;

	if (active && n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return false;
		memcpy(copy, rules, n * sizeof(*copy));
	}
	free(st->rules);
	st->rules = copy;
	st->n_rules = active ? n : 0;
	st->rules_cap = st->n_rules;
	st->filter_known = true;
	st->filter_active = active;
	return true;
}

static bool add_rule(struct node_state *st, const struct filter_rule *r)
{
	if (st->n_rules == FILTER_MAX_RULES)
		return false;
	if (st->n_rules == st->rules_cap) {
		size_t cap = st->rules_cap ? st->rules_cap * 2 : 16;
		struct filter_rule *v = realloc(st->rules, cap * sizeof(*v));
		if (!v)
			return false;
		st->rules = v;
		st->rules_cap = cap;
	}
	st->rules[st->n_rules++] = *r;
	return true;
}

static bool parse_port_text(const char *s, uint16_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s < '0' || *s > '9')
		return false;
	v = strtoul(s, &end, 10);
	if (*end || v > PORT_MAX)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* "rule SRC/BITS DST/BITS PROTO PORTS": what format_rule writes. */
static bool parse_rule(char **tok, size_t n, struct filter_rule *r)
{
	struct ip_prefix src, dst;
	static const uint8_t protos[] = { FILTER_PROTO_ANY, FILTER_PROTO_TCP, FILTER_PROTO_UDP, FILTER_PROTO_ICMP };
	bool proto_ok = false;

	memset(r, 0, sizeof(*r));
	if (n != 5 || !strchr(tok[1], '/') || !strchr(tok[2], '/') || !ip_prefix_parse(tok[1], &src) ||
	    !ip_prefix_parse(tok[2], &dst) || src.family != dst.family)
		return false;
	r->family = src.family == AF_INET ? FILTER_FAMILY_IPV4 : FILTER_FAMILY_IPV6;
	r->src_bits = src.bits;
	r->dst_bits = dst.bits;
	memcpy(r->src, src.addr, sizeof(r->src));
	memcpy(r->dst, dst.addr, sizeof(r->dst));
	for (size_t i = 0; i < sizeof(protos); i++)
		if (strcmp(tok[3], filter_proto_name(protos[i])) == 0) {
			r->proto = protos[i];
			proto_ok = true;
		}
	if (!proto_ok)
		return false;
	char *dash = strchr(tok[4], '-');
	if (strcmp(tok[4], "*") == 0) {
		r->port_lo = 0;
		r->port_hi = PORT_MAX;
	} else if (dash) {
		*dash = '\0';
		if (!parse_port_text(tok[4], &r->port_lo) || !parse_port_text(dash + 1, &r->port_hi))
			return false;
	} else {
		if (!parse_port_text(tok[4], &r->port_lo))
			return false;
		r->port_hi = r->port_lo;
	}
	return filter_rule_valid(r); /* host bits, port order, ICMP with all ports */
}

void state_pin_overlay(struct node_state *st)
{
	if (st->pinned || !st->registered)
		return;
	st->pin_ipv4 = ip_prefix_network(&st->ipv4);
	st->pin_ipv6 = ip_prefix_network(&st->ipv6);
	st->pinned = true;
}

bool state_inside_pin(const struct node_state *st, const struct ip_prefix *v4, const struct ip_prefix *v6)
{
	return !st->pinned || (ip_prefix_within(v4, &st->pin_ipv4) && ip_prefix_within(v6, &st->pin_ipv6));
}

bool state_add_peer(struct node_state *st, const struct control_peer *p)
{
	if (st->n_peers == st->peers_cap) {
		size_t cap = st->peers_cap ? st->peers_cap * 2 : 16;
		struct control_peer *grown = realloc(st->peers, cap * sizeof(*grown));
		if (!grown)
			return false;
		st->peers = grown;
		st->peers_cap = cap;
	}
	st->peers[st->n_peers++] = *p;
	return true;
}

bool state_add_routes(struct node_state *st, const struct control_peer_routes *r)
{
	if (st->n_routes == st->routes_cap) {
		size_t cap = st->routes_cap ? st->routes_cap * 2 : 4;
		struct control_peer_routes *grown = realloc(st->routes, cap * sizeof(*grown));
		if (!grown)
			return false;
		st->routes = grown;
		st->routes_cap = cap;
	}
	st->routes[st->n_routes++] = *r;
	return true;
}

/* ---------------------------------------------------------------- text form */

static bool fail(char *err, size_t err_len, size_t line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool fail(char *err, size_t err_len, size_t line, const char *fmt, ...)
{
	int n = snprintf(err, err_len, "line %zu: ", line);
	va_list ap;
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < err_len)
		vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

static bool parse_endpoint(const char *s, struct control_endpoint *out)
{
	char host[ENDPOINT_HOST_MAX];
	uint16_t port;
	if (!endpoint_parse(s, host, sizeof(host), &port))
		return false;
	memset(out, 0, sizeof(*out));
	out->port = port;
	if (inet_pton(AF_INET, host, out->addr) == 1) {
		out->family = 4;
		return true;
	}
	out->family = 6;
	return inet_pton(AF_INET6, host, out->addr) == 1;
}

static bool parse_host_address(const char *s, int family, uint8_t *out)
{
	struct ip_prefix p;
	int bits = family == AF_INET ? 32 : 128;
	if (!ip_prefix_parse(s, &p) || p.family != family || p.bits != bits)
		return false;
	memcpy(out, p.addr, family == AF_INET ? 4 : 16);
	return true;
}

static bool parse_name(const char *s, char out[CONTROL_NAME_MAX + 1])
{
	size_t n = strlen(s);
	if (n == 0 || n > CONTROL_NAME_MAX)
		return false;
	memcpy(out, s, n + 1);
	return true;
}

/* Splits a line (NUL-terminated, in place) at spaces. */
static size_t tokenize(char *line, char **tok, size_t max)
{
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == max)
			return max + 1;
		tok[n++] = t;
	}
	return n;
}

static bool parse_line(struct node_state *st, char *line, size_t lineno, bool *seen_header, char *err,
		       size_t err_len)
{
	char *tok[STATE_MAX_TOKENS + 1];
	size_t n = tokenize(line, tok, STATE_MAX_TOKENS);

	if (n == 0 || tok[0][0] == '#')
		return true;
	if (n > STATE_MAX_TOKENS)
		return fail(err, err_len, lineno, "too many fields");
	if (!*seen_header) {
		if (n != 2 || strcmp(tok[0], "meshd-state") != 0 || strcmp(tok[1], "1") != 0)
			return fail(err, err_len, lineno, "not a meshd state file (version %d expected)",
				    STATE_FILE_VERSION);
		*seen_header = true;
		return true;
	}
	if (!strcmp(tok[0], "coordinator")) {
		if (n != 3 || !endpoint_parse(tok[1], st->coord_host, sizeof(st->coord_host), &st->coord_port) ||
		    !key_from_base64(st->coord_public, tok[2], strlen(tok[2])))
			return fail(err, err_len, lineno, "bad coordinator line");
		st->has_coordinator = true;
		return true;
	}
	if (!strcmp(tok[0], "self")) {
		if (n != 4 || !parse_name(tok[1], st->name) || !ip_prefix_parse(tok[2], &st->ipv4) ||
		    st->ipv4.family != AF_INET || !ip_prefix_parse(tok[3], &st->ipv6) || st->ipv6.family != AF_INET6)
			return fail(err, err_len, lineno, "bad self line");
		st->registered = true;
		return true;
	}
	if (!strcmp(tok[0], "pin")) {
		if (n != 3 || !ip_prefix_parse(tok[1], &st->pin_ipv4) || st->pin_ipv4.family != AF_INET ||
		    !ip_prefix_parse(tok[2], &st->pin_ipv6) || st->pin_ipv6.family != AF_INET6)
			return fail(err, err_len, lineno, "bad pin line");
		st->pin_ipv4 = ip_prefix_network(&st->pin_ipv4);
		st->pin_ipv6 = ip_prefix_network(&st->pin_ipv6);
		st->pinned = true;
		return true;
	}
	if (!strcmp(tok[0], "dns")) {
		if (n != 2 || !dns_domain_valid(tok[1]))
			return fail(err, err_len, lineno, "bad dns line");
		snprintf(st->dns_domain, sizeof(st->dns_domain), "%s", tok[1]);
		return true;
	}
	if (!strcmp(tok[0], "peer")) {
		struct control_peer p;
		memset(&p, 0, sizeof(p));
		if (n > 5 + CONTROL_MAX_ENDPOINTS)
			return fail(err, err_len, lineno, "too many fields");
		if (n < 5 || !key_from_base64(p.node_key, tok[1], strlen(tok[1])) || !parse_name(tok[2], p.name) ||
		    !parse_host_address(tok[3], AF_INET, p.ipv4) || !parse_host_address(tok[4], AF_INET6, p.ipv6))
			return fail(err, err_len, lineno, "bad peer line");
		for (size_t i = 5; i < n; i++)
			if (!parse_endpoint(tok[i], &p.endpoints[p.n_endpoints++]))
				return fail(err, err_len, lineno, "bad peer endpoint '%.64s'", tok[i]);
		if (!state_add_peer(st, &p))
			return fail(err, err_len, lineno, "out of memory");
		return true;
	}
	if (!strcmp(tok[0], "routes")) {
		struct control_peer_routes r;
		memset(&r, 0, sizeof(r));
		if (n < 2 || n - 2 > CONTROL_MAX_ROUTES || !key_from_base64(r.node_key, tok[1], strlen(tok[1])))
			return fail(err, err_len, lineno, "bad routes line");
		for (size_t i = 2; i < n; i++)
			if (!route_parse(tok[i], &r.routes.list[r.routes.n++]))
				return fail(err, err_len, lineno, "bad route '%.64s'", tok[i]);
		if (!state_add_routes(st, &r))
			return fail(err, err_len, lineno, "out of memory");
		return true;
	}
	if (!strcmp(tok[0], "satellite")) {
		struct control_satellite *sat = &st->satellites.list[st->satellites.n];
		if (st->satellites.n == CONTROL_MAX_SATELLITES)
			return fail(err, err_len, lineno, "more than %d satellites", CONTROL_MAX_SATELLITES);
		memset(sat, 0, sizeof(*sat));
		if ((n != 5 && n != 6) || !key_from_base64(sat->public_key, tok[1], strlen(tok[1])) ||
		    !parse_name(tok[2], sat->name) || !parse_host_address(tok[3], AF_INET, sat->ipv4) ||
		    !parse_host_address(tok[4], AF_INET6, sat->ipv6) ||
		    (n == 6 && !key_from_base64(sat->psk, tok[5], strlen(tok[5])))) {
			sodium_memzero(sat, sizeof(*sat));
			return fail(err, err_len, lineno, "bad satellite line");
		}
		sat->has_psk = n == 6;
		st->satellites.n++;
		return true;
	}
	if (!strcmp(tok[0], "filter")) {
		if (n != 2 || (strcmp(tok[1], "on") != 0 && strcmp(tok[1], "off") != 0))
			return fail(err, err_len, lineno, "bad filter line (filter on|off)");
		st->filter_known = true;
		st->filter_active = strcmp(tok[1], "on") == 0;
		return true;
	}
	if (!strcmp(tok[0], "rule")) {
		struct filter_rule r;
		if (!st->filter_active)
			return fail(err, err_len, lineno, "rule line without a 'filter on' line before it");
		if (!parse_rule(tok, n, &r))
			return fail(err, err_len, lineno, "bad rule line");
		if (!add_rule(st, &r))
			return fail(err, err_len, lineno, "more than %d rules, or out of memory", FILTER_MAX_RULES);
		return true;
	}
	return fail(err, err_len, lineno, "unknown line type '%.32s'", tok[0]);
}

bool state_parse(struct node_state *st, const char *text, size_t len, char *err, size_t err_len)
{
	char line[STATE_LINE_MAX];
	bool seen_header = false;
	size_t lineno = 0, pos = 0;

	state_init(st);
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
		lineno++;
		if (line_len >= sizeof(line) || memchr(text + pos, '\0', line_len)) {
			state_free(st);
			return fail(err, err_len, lineno, "line too long or holds a NUL byte");
		}
		memcpy(line, text + pos, line_len);
		line[line_len] = '\0';
		pos += line_len + (nl ? 1 : 0);
		if (!parse_line(st, line, lineno, &seen_header, err, err_len)) {
			state_free(st);
			return false;
		}
	}
	if (!seen_header && len > 0) {
		state_free(st);
		return fail(err, err_len, lineno, "no header line");
	}
	if (st->registered && !state_inside_pin(st, &st->ipv4, &st->ipv6)) {
		state_free(st);
		snprintf(err, err_len, "the self line's addresses lie outside the pinned overlay (pin line): refused");
		return false;
	}
	state_pin_overlay(st); /* a file from before pinning: pinned to its self line */
	return true;
}

/* ---------------------------------------------------------------- files */

static bool state_path(const char *dir, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", dir, STATE_FILE_NAME);
	return n > 0 && (size_t)n < cap;
}

bool state_load(struct node_state *st, const char *dir, char *err, size_t err_len)
{
	char path[4096], perr[256];
	struct stat sb;
	char *text = NULL;
	size_t len = 0;

	state_init(st);
	if (!state_path(dir, path, sizeof(path))) {
		snprintf(err, err_len, "%s: state directory path is too long", dir);
		return false;
	}
	if (stat(path, &sb) < 0 && errno == ENOENT)
		return true;
	if (!yamlread_load_file(path, STATE_FILE_MAX, &text, &len, &sb, err, err_len))
		return false;
	bool ok = state_parse(st, text, len, perr, sizeof(perr));
	free(text);
	if (!ok)
		snprintf(err, err_len, "%s: %s; move it away to start afresh (the node will need a join key)", path,
			 perr);
	return ok;
}

static void format_endpoint(const struct control_endpoint *e, char *out, size_t cap)
{
	char addr[INET6_ADDRSTRLEN];
	inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->addr, addr, sizeof(addr));
	snprintf(out, cap, e->family == 4 ? "%s:%u" : "[%s]:%u", addr, e->port);
}

bool state_save(const struct node_state *st, const char *dir, char *err, size_t err_len)
{
	char path[4096];
	if (!state_path(dir, path, sizeof(path))) {
		snprintf(err, err_len, "%s: state directory path is too long", dir);
		return false;
	}
	size_t cap = STATE_HEADER_MAX + st->n_peers * STATE_PEER_LINE_MAX + st->n_routes * STATE_ROUTES_LINE_MAX +
		     st->n_rules * STATE_RULE_LINE_MAX + st->satellites.n * STATE_SATELLITE_LINE_MAX,
	     used = 0;
	char *buf = malloc(cap);
	if (!buf) {
		snprintf(err, err_len, "%s: out of memory", path);
		return false;
	}
	/* Stops at the first line that does not fit; used >= cap then reports it below. */
#define APPEND(...)                                                               \
	do {                                                                      \
		if (used < cap) {                                                 \
			int n_ = snprintf(buf + used, cap - used, __VA_ARGS__);   \
			used += n_ < 0 ? cap : (size_t)n_;                        \
		}                                                                 \
	} while (0)
	char key[KEY_BASE64_LEN + 1], a[IP_PREFIX_STR_MAX], b[IP_PREFIX_STR_MAX];
	APPEND("meshd-state %d\n# written by meshd; the coordinator's view of this node and its peers\n",
	       STATE_FILE_VERSION);
	if (st->has_coordinator) {
		key_to_base64(key, st->coord_public);
		APPEND(strchr(st->coord_host, ':') ? "coordinator [%s]:%u %s\n" : "coordinator %s:%u %s\n",
		       st->coord_host, st->coord_port, key);
	}
	if (st->registered)
		APPEND("self %s %s %s\n", st->name, ip_prefix_format(&st->ipv4, a, sizeof(a)),
		       ip_prefix_format(&st->ipv6, b, sizeof(b)));
	if (st->pinned)
		APPEND("pin %s %s\n", ip_prefix_format(&st->pin_ipv4, a, sizeof(a)),
		       ip_prefix_format(&st->pin_ipv6, b, sizeof(b)));
	if (st->dns_domain[0])
		APPEND("dns %s\n", st->dns_domain);
	for (size_t i = 0; i < st->n_peers; i++) {
		const struct control_peer *p = &st->peers[i];
		char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
		key_to_base64(key, p->node_key);
		inet_ntop(AF_INET, p->ipv4, v4, sizeof(v4));
		inet_ntop(AF_INET6, p->ipv6, v6, sizeof(v6));
		APPEND("peer %s %s %s %s", key, p->name, v4, v6);
		for (size_t j = 0; j < p->n_endpoints; j++) {
			char ep[64];
			format_endpoint(&p->endpoints[j], ep, sizeof(ep));
			APPEND(" %s", ep);
		}
		APPEND("\n");
	}
	for (size_t i = 0; i < st->n_routes; i++) {
		const struct control_peer_routes *r = &st->routes[i];
		key_to_base64(key, r->node_key);
		APPEND("routes %s", key);
		for (size_t j = 0; j < r->routes.n && j < CONTROL_MAX_ROUTES; j++)
			APPEND(" %s", route_format(&r->routes.list[j], a, sizeof(a)));
		APPEND("\n");
	}
	for (size_t i = 0; i < st->satellites.n && i < CONTROL_MAX_SATELLITES; i++) {
		const struct control_satellite *sat = &st->satellites.list[i];
		char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN], psk[KEY_BASE64_LEN + 1];
		key_to_base64(key, sat->public_key);
		inet_ntop(AF_INET, sat->ipv4, v4, sizeof(v4));
		inet_ntop(AF_INET6, sat->ipv6, v6, sizeof(v6));
		if (sat->has_psk)
			key_to_base64(psk, sat->psk);
		APPEND("satellite %s %s %s %s%s%s\n", key, sat->name, v4, v6, sat->has_psk ? " " : "",
		       sat->has_psk ? psk : "");
		sodium_memzero(psk, sizeof(psk));
	}
	if (st->filter_known)
		APPEND("filter %s\n", st->filter_active ? "on" : "off");
	for (size_t i = 0; st->filter_active && i < st->n_rules; i++) {
		const struct filter_rule *r = &st->rules[i];
		struct ip_prefix sp = { .family = r->family == FILTER_FAMILY_IPV4 ? AF_INET : AF_INET6, .bits = r->src_bits };
		struct ip_prefix dp = { .family = sp.family, .bits = r->dst_bits };
		memcpy(sp.addr, r->src, sizeof(sp.addr));
		memcpy(dp.addr, r->dst, sizeof(dp.addr));
		APPEND("rule %s %s %s ", ip_prefix_format(&sp, a, sizeof(a)), ip_prefix_format(&dp, b, sizeof(b)),
		       filter_proto_name(r->proto));
		if (r->port_lo == 0 && r->port_hi == PORT_MAX)
			APPEND("*\n");
		else if (r->port_lo == r->port_hi)
			APPEND("%u\n", r->port_lo);
		else
			APPEND("%u-%u\n", r->port_lo, r->port_hi);
	}
#undef APPEND
	/* What load would refuse is not written: the node would lose all of it at restart. */
	bool fits = used < cap && used <= STATE_FILE_MAX;
	bool ok = fits && file_write_atomic(path, buf, used, STATE_FILE_MODE, err, err_len);
	if (used >= cap)
		snprintf(err, err_len, "%s: state too large to format", path);
	else if (!fits)
		snprintf(err, err_len, "%s: state of %zu peers is larger than meshd reads back (%d MiB); not saved",
			 path, st->n_peers, STATE_FILE_MAX >> 20);
	sodium_memzero(buf, used < cap ? used : cap); /* satellites' preshared keys */
	free(buf);
	return ok;
}
