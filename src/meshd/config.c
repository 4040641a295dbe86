/* The node's YAML configuration: a strict, schema-directed reader over libyaml events.
 *
 * Events rather than libyaml's document API: the parser walks the schema and stops at the
 * first thing it does not expect, so hostile input (deep nesting, alias bombs, huge
 * sequences) is refused after a few events instead of being loaded into a tree first.
 */
#include "meshd/config.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/keys.h"

enum {
	CONFIG_FILE_MAX = 1 << 20,          /* a config with CONFIG_MAX_PEERS peers is ~400 KiB */
	CONFIG_MAX_KEEPALIVE_S = 3600,      /* beyond an hour no NAT mapping survives anyway */
	CONFIG_IPV6_MIN_MTU = 1280,         /* RFC 8200: the kernel drops IPv6 below this */
	CONFIG_DEFAULT_NAME_LEN = 8,        /* key prefix used as a peer name: short, unique enough */
	CONFIG_QUOTE_MAX = 48,              /* longest user text echoed back in an error */
	CONFIG_QUOTE_BUF = CONFIG_QUOTE_MAX + 4, /* plus "..." and the NUL */
	CONFIG_NUMBER_MAX_DIGITS = 10,      /* every limit here fits in an unsigned int */
	CONFIG_PEERS_INITIAL_CAP = 4,       /* most nodes list a handful of peers; grows by doubling */
	CONFIG_FILE_PRIVATE_BITS = 0077,    /* a file holding preshared keys must be owner-only */
	CONFIG_FILE_GROUP_OTHER_READ = 0044, /* to say "readable" rather than just "accessible" */
};

static const char config_default_interface[] = "mesh0";

enum root_key { ROOT_INTERFACE, ROOT_PRIVATE_KEY_FILE, ROOT_LISTEN_PORT, ROOT_ADDRESS, ROOT_MTU, ROOT_PEERS, ROOT_N };
static const char *const root_keys[ROOT_N] = {
	[ROOT_INTERFACE] = "interface",
	[ROOT_PRIVATE_KEY_FILE] = "private_key_file",
	[ROOT_LISTEN_PORT] = "listen_port",
	[ROOT_ADDRESS] = "address",
	[ROOT_MTU] = "mtu",
	[ROOT_PEERS] = "peers",
};

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
	yaml_parser_t yp;
	yaml_event_t ev;      /* the current event, owned while have_event */
	bool have_event;
	const char *source;
	const char *text;     /* the input, to turn a reader error's byte offset into line:col */
	size_t len;
	char *err;
	size_t err_len;
	bool failed;          /* the first error wins; later ones would only be consequences */
	struct config *cfg;
	size_t peers_cap;
	struct peer_origin *peer_origins;
	struct prefix_origin *prefixes;
	size_t n_prefixes, prefixes_cap;
};

static void fail_at(struct cfg_parser *p, yaml_mark_t mark, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail_at(struct cfg_parser *p, yaml_mark_t mark, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return;
	p->failed = true;
	if (p->err_len == 0)
		return;
	n = snprintf(p->err, p->err_len, "%s:%zu:%zu: ", p->source, mark.line + 1, mark.column + 1);
	if (n < 0 || (size_t)n >= p->err_len)
		return;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->err_len - (size_t)n, fmt, ap);
	va_end(ap);
}

/* User text echoed into an error: printable ASCII only and bounded, so a hostile file
 * cannot write escape sequences or pages of text into the log. */
static const char *quote(const char *s, size_t len, char out[CONFIG_QUOTE_BUF])
{
	size_t n = len < CONFIG_QUOTE_MAX ? len : CONFIG_QUOTE_MAX;

	for (size_t i = 0; i < n; i++)
		out[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (len > CONFIG_QUOTE_MAX) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static const char *event_kind(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return "a single value";
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	default:
		return "the end of a block";
	}
}

static void mark_from_offset(struct cfg_parser *p, size_t offset, yaml_mark_t *mark)
{
	size_t line = 0, line_start = 0;

	if (offset > p->len)
		offset = p->len;
	for (size_t i = 0; i < offset; i++) {
		if (p->text[i] == '\n') {
			line++;
			line_start = i + 1;
		}
	}
	memset(mark, 0, sizeof(*mark));
	mark->index = offset;
	mark->line = line;
	mark->column = offset - line_start;
}

static void fail_syntax(struct cfg_parser *p)
{
	const yaml_parser_t *yp = &p->yp;
	const char *problem = yp->problem ? yp->problem : "unknown problem";
	yaml_mark_t mark;

	switch (yp->error) {
	case YAML_MEMORY_ERROR:
		mark_from_offset(p, 0, &mark);
		fail_at(p, mark, "out of memory while parsing YAML");
		break;
	case YAML_READER_ERROR:
		mark_from_offset(p, yp->problem_offset, &mark);
		if (yp->problem_value != -1)
			fail_at(p, mark, "invalid input: %s (byte 0x%02x)", problem, (unsigned int)yp->problem_value & 0xffu);
		else
			fail_at(p, mark, "invalid input: %s", problem);
		break;
	default:
		if (yp->context)
			fail_at(p, yp->problem_mark, "YAML syntax error: %s (%s at line %zu, column %zu)", problem,
				yp->context, yp->context_mark.line + 1, yp->context_mark.column + 1);
		else
			fail_at(p, yp->problem_mark, "YAML syntax error: %s", problem);
		break;
	}
}

static void drop_event(struct cfg_parser *p)
{
	if (!p->have_event)
		return;
	/* Scalars may be preshared keys: wipe every one rather than track which. */
	if (p->ev.type == YAML_SCALAR_EVENT && p->ev.data.scalar.value)
		sodium_memzero(p->ev.data.scalar.value, p->ev.data.scalar.length);
	yaml_event_delete(&p->ev);
	p->have_event = false;
}

/* Advances to the next event. Aliases are refused here, once for the whole schema: nothing
 * in a node config needs them, and refusing them rules out "billion laughs" expansion. */
static bool next_event(struct cfg_parser *p)
{
	drop_event(p);
	if (!yaml_parser_parse(&p->yp, &p->ev)) {
		fail_syntax(p);
		return false;
	}
	p->have_event = true;
	if (p->ev.type == YAML_ALIAS_EVENT) {
		fail_at(p, p->ev.start_mark, "YAML aliases (*name) are not supported in this file");
		return false;
	}
	return true;
}

static const char *scalar_value(const struct cfg_parser *p)
{
	return (const char *)p->ev.data.scalar.value;
}

static size_t scalar_len(const struct cfg_parser *p)
{
	return p->ev.data.scalar.length;
}

/* Reads the next value, which must be a scalar. */
static bool expect_scalar(struct cfg_parser *p, const char *key)
{
	if (!next_event(p))
		return false;
	if (p->ev.type != YAML_SCALAR_EVENT) {
		fail_at(p, p->ev.start_mark, "'%s' must be a single value, not %s", key, event_kind(&p->ev));
		return false;
	}
	/* A double-quoted "\0" yields a NUL byte inside the value, which C strings would
	 * silently cut: "key\0.evil" must not quietly become "key". */
	if (memchr(scalar_value(p), '\0', scalar_len(p))) {
		fail_at(p, p->ev.start_mark, "'%s' contains a NUL character", key);
		return false;
	}
	return true;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal only. A leading zero is refused because YAML 1.1 reads "0123" as octal, and
 * "+1", "1_000", "0x10" or " 1" would each mean something else to some other tool. */
static bool get_uint(struct cfg_parser *p, const char *key, unsigned int min, unsigned int max,
		     unsigned int *out)
{
	char q[CONFIG_QUOTE_BUF];
	const char *s;
	unsigned long v;
	char *end;
	size_t len;

	if (!expect_scalar(p, key))
		return false;
	s = scalar_value(p);
	len = scalar_len(p);
	if (len == 0 || len > CONFIG_NUMBER_MAX_DIGITS || (len > 1 && s[0] == '0'))
		goto bad;
	for (size_t i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			goto bad;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end != s + len || v < min || v > max)
		goto bad;
	*out = (unsigned int)v;
	return true;
bad:
	fail_at(p, p->ev.start_mark, "'%s' must be a whole number from %u to %u, got '%s'", key, min, max,
		quote(s, len, q));
	return false;
}

static bool get_string(struct cfg_parser *p, const char *key, char *buf, size_t cap)
{
	if (!expect_scalar(p, key))
		return false;
	if (scalar_len(p) == 0) {
		fail_at(p, p->ev.start_mark, "'%s' must not be empty", key);
		return false;
	}
	if (scalar_len(p) >= cap) {
		fail_at(p, p->ev.start_mark, "'%s' is too long (at most %zu characters)", key, cap - 1);
		return false;
	}
	memcpy(buf, scalar_value(p), scalar_len(p) + 1);
	return true;
}

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

static bool peer_name_valid(const char *s, size_t len)
{
	if (len == 0 || len >= CONFIG_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '_' ||
		      c == '.'))
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

/* Parses one prefix scalar (the current event) into list[*n], and its position into
 * marks[*n] when the caller wants positions. */
static bool add_prefix(struct cfg_parser *p, const char *key, bool network, struct ip_prefix *list,
		       yaml_mark_t *marks, size_t max, size_t *n)
{
	char q[CONFIG_QUOTE_BUF], buf[IP_PREFIX_STR_MAX], host_buf[IP_PREFIX_STR_MAX];
	struct ip_prefix pfx, masked, host;
	const char *s = scalar_value(p);
	size_t len = scalar_len(p);

	if (memchr(s, '\0', len) || len >= sizeof(buf) || !ip_prefix_parse(s, &pfx)) {
		fail_at(p, p->ev.start_mark, "'%s': '%s' is not an IP address or prefix (e.g. %s)", key,
			quote(s, len, q), network ? "100.64.0.2/32 or fd00::/64" : "100.64.0.1/10");
		return false;
	}
	/* An allowed_ips entry is a network: "10.1.2.3/24" is almost always a typo for one of
	 * "10.1.2.0/24" or "10.1.2.3/32", and guessing which would route someone's traffic. */
	if (network && prefix_has_host_bits(&pfx, &masked)) {
		host = pfx;
		host.bits = pfx.family == AF_INET ? 32 : 128;
		fail_at(p, p->ev.start_mark, "'%s': '%s' has host bits set; did you mean %s or %s?", key,
			quote(s, len, q), ip_prefix_format(&masked, buf, sizeof(buf)),
			ip_prefix_format(&host, host_buf, sizeof(host_buf)));
		return false;
	}
	for (size_t i = 0; i < *n; i++) {
		if (prefix_equal(&list[i], &pfx)) {
			fail_at(p, p->ev.start_mark, "'%s': %s is listed twice", key,
				ip_prefix_format(&pfx, buf, sizeof(buf)));
			return false;
		}
	}
	if (*n >= max) {
		fail_at(p, p->ev.start_mark, "'%s' has too many entries (at most %zu)", key, max);
		return false;
	}
	if (marks)
		marks[*n] = p->ev.start_mark;
	list[(*n)++] = pfx;
	return true;
}

/* A prefix list: a single scalar or a sequence of scalars, with at least one entry. */
static bool get_prefix_list(struct cfg_parser *p, const char *key, bool network, struct ip_prefix *list,
			    yaml_mark_t *marks, size_t max, size_t *n)
{
	yaml_mark_t start;

	*n = 0;
	if (!next_event(p))
		return false;
	start = p->ev.start_mark;
	if (p->ev.type == YAML_SCALAR_EVENT)
		return add_prefix(p, key, network, list, marks, max, n);
	if (p->ev.type != YAML_SEQUENCE_START_EVENT) {
		fail_at(p, start, "'%s' must be a prefix or a list of prefixes, not %s", key, event_kind(&p->ev));
		return false;
	}
	for (;;) {
		if (!next_event(p))
			return false;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			break;
		if (p->ev.type != YAML_SCALAR_EVENT) {
			fail_at(p, p->ev.start_mark, "'%s' entries must be single prefixes, not %s", key,
				event_kind(&p->ev));
			return false;
		}
		if (!add_prefix(p, key, network, list, marks, max, n))
			return false;
	}
	if (*n == 0) {
		fail_at(p, start, "'%s' must list at least one prefix", key);
		return false;
	}
	return true;
}

/* "a, b, c": the keys a mapping accepts, for the unknown-key message. */
static const char *key_list(const char *const *keys, size_t n_keys, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n_keys && off < cap; i++) {
		int w = snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", keys[i]);

		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

/* Reads the next key of a mapping. Returns false on error; *done when the mapping ended. */
static bool next_key(struct cfg_parser *p, const char *const *keys, size_t n_keys, size_t *seen_line,
		     const char *what, size_t *idx, bool *done)
{
	char q[CONFIG_QUOTE_BUF], expected[256];
	const char *s;
	size_t len;

	*done = false;
	if (!next_event(p))
		return false;
	if (p->ev.type == YAML_MAPPING_END_EVENT) {
		*done = true;
		return true;
	}
	if (p->ev.type != YAML_SCALAR_EVENT) {
		fail_at(p, p->ev.start_mark, "expected a %skey name, found %s", what, event_kind(&p->ev));
		return false;
	}
	s = scalar_value(p);
	len = scalar_len(p);
	for (size_t i = 0; i < n_keys; i++) {
		if (strlen(keys[i]) == len && memcmp(keys[i], s, len) == 0) {
			if (seen_line[i]) {
				fail_at(p, p->ev.start_mark, "duplicate key '%s' (first given at line %zu)", keys[i],
					seen_line[i]);
				return false;
			}
			seen_line[i] = p->ev.start_mark.line + 1;
			*idx = i;
			return true;
		}
	}
	fail_at(p, p->ev.start_mark, "unknown %skey '%s' (expected one of: %s)", what, quote(s, len, q),
		key_list(keys, n_keys, expected, sizeof(expected)));
	return false;
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
	struct config *cfg = p->cfg;
	struct config_peer *peer;
	struct peer_origin *origin;
	yaml_mark_t prefix_marks[CONFIG_MAX_ALLOWED_IPS];
	size_t seen[PEER_N] = { 0 };
	char b64[KEY_BASE64_LEN + 1];
	size_t idx, peer_idx = cfg->n_peers;
	bool done;

	if (cfg->n_peers >= CONFIG_MAX_PEERS) {
		fail_at(p, start, "too many peers (at most %d)", CONFIG_MAX_PEERS);
		return false;
	}
	if (cfg->n_peers == p->peers_cap && !grow_peers(p)) {
		fail_at(p, start, "out of memory");
		return false;
	}
	peer = &cfg->peers[peer_idx];
	origin = &p->peer_origins[peer_idx];
	memset(peer, 0, sizeof(*peer));

	for (;;) {
		if (!next_key(p, peer_keys, PEER_N, seen, "peer ", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum peer_key)idx) {
		case PEER_PUBLIC_KEY:
		case PEER_PRESHARED_KEY: {
			uint8_t *dst = idx == PEER_PUBLIC_KEY ? peer->public_key : peer->psk;

			if (!expect_scalar(p, peer_keys[idx]))
				return false;
			/* The value is never echoed: a private key pasted into the wrong field must
			 * not end up in a log. */
			if (!key_from_base64(dst, scalar_value(p), scalar_len(p))) {
				fail_at(p, p->ev.start_mark, "'%s' is not a key (expected %d characters of base64)",
					peer_keys[idx], KEY_BASE64_LEN);
				return false;
			}
			if (idx == PEER_PUBLIC_KEY)
				origin->key_mark = p->ev.start_mark;
			else
				peer->has_psk = true;
			break;
		}
		case PEER_ENDPOINT: {
			char q[CONFIG_QUOTE_BUF];

			if (!expect_scalar(p, peer_keys[idx]))
				return false;
			if (!endpoint_parse(scalar_value(p), peer->endpoint_host, sizeof(peer->endpoint_host),
					    &peer->endpoint_port)) {
				fail_at(p, p->ev.start_mark,
					"'endpoint': '%s' is not host:port or [IPv6]:port with a port from 1 to 65535",
					quote(scalar_value(p), scalar_len(p), q));
				return false;
			}
			peer->has_endpoint = true;
			break;
		}
		case PEER_ALLOWED_IPS:
			if (!get_prefix_list(p, peer_keys[idx], true, peer->allowed_ips, prefix_marks,
					     CONFIG_MAX_ALLOWED_IPS, &peer->n_allowed_ips))
				return false;
			break;
		case PEER_NAME: {
			char q[CONFIG_QUOTE_BUF];

			if (!expect_scalar(p, peer_keys[idx]))
				return false;
			if (!peer_name_valid(scalar_value(p), scalar_len(p))) {
				fail_at(p, p->ev.start_mark,
					"'name': '%s' must be 1 to %d letters, digits, '-', '_' or '.'",
					quote(scalar_value(p), scalar_len(p), q), CONFIG_NAME_MAX - 1);
				return false;
			}
			memcpy(peer->name, scalar_value(p), scalar_len(p) + 1);
			origin->name_mark = p->ev.start_mark;
			break;
		}
		case PEER_KEEPALIVE:
			if (!get_uint(p, peer_keys[idx], 0, CONFIG_MAX_KEEPALIVE_S, &peer->persistent_keepalive_s))
				return false;
			break;
		case PEER_N:
			return false;
		}
	}

	if (!seen[PEER_PUBLIC_KEY] || !seen[PEER_ALLOWED_IPS]) {
		fail_at(p, start, "peer is missing required key '%s'",
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
			fail_at(p, origin->key_mark, "peer public_key is already used by peer '%s' (line %zu)",
				other->name, p->peer_origins[i].key_mark.line + 1);
			return false;
		}
		if (strcmp(other->name, peer->name) == 0) {
			fail_at(p, origin->name_mark, "peer name '%s' is already used (line %zu)", peer->name,
				p->peer_origins[i].name_mark.line + 1);
			return false;
		}
	}
	if (!record_prefixes(p, peer, peer_idx, prefix_marks)) {
		fail_at(p, start, "out of memory");
		return false;
	}
	cfg->n_peers++;
	return true;
}

static bool parse_peers(struct cfg_parser *p)
{
	if (!next_event(p))
		return false;
	/* "peers:" with nothing after it (every peer commented out) means no peers. */
	if (p->ev.type == YAML_SCALAR_EVENT && p->ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (scalar_len(p) == 0 || strcmp(scalar_value(p), "~") == 0 || strcmp(scalar_value(p), "null") == 0))
		return true;
	if (p->ev.type != YAML_SEQUENCE_START_EVENT) {
		fail_at(p, p->ev.start_mark, "'peers' must be a list of peers, not %s", event_kind(&p->ev));
		return false;
	}
	for (;;) {
		if (!next_event(p))
			return false;
		if (p->ev.type == YAML_SEQUENCE_END_EVENT)
			return true;
		if (p->ev.type != YAML_MAPPING_START_EVENT) {
			fail_at(p, p->ev.start_mark, "each peer must be a mapping (public_key: ..., allowed_ips: ...), not %s",
				event_kind(&p->ev));
			return false;
		}
		if (!parse_peer(p, p->ev.start_mark))
			return false;
	}
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
	fail_at(p, dup->mark, "'allowed_ips': %s is already claimed by peer '%s' (line %zu)",
		ip_prefix_format(&dup->prefix, buf, sizeof(buf)), p->cfg->peers[first->peer].name,
		first->mark.line + 1);
	return false;
}

static bool parse_root(struct cfg_parser *p, yaml_mark_t start)
{
	struct config *cfg = p->cfg;
	size_t seen[ROOT_N] = { 0 };
	yaml_mark_t mtu_mark = start;
	char q[CONFIG_QUOTE_BUF];
	unsigned int v;
	size_t idx;
	bool done;

	for (;;) {
		if (!next_key(p, root_keys, ROOT_N, seen, "", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum root_key)idx) {
		case ROOT_INTERFACE:
			if (!expect_scalar(p, root_keys[idx]))
				return false;
			if (!interface_name_valid(scalar_value(p), scalar_len(p))) {
				fail_at(p, p->ev.start_mark,
					"'interface': '%s' is not a valid interface name (1 to %d characters, no '/', ':' or spaces)",
					quote(scalar_value(p), scalar_len(p), q), IFNAMSIZ - 1);
				return false;
			}
			memcpy(cfg->interface, scalar_value(p), scalar_len(p) + 1);
			break;
		case ROOT_PRIVATE_KEY_FILE:
			if (!get_string(p, root_keys[idx], cfg->private_key_file, sizeof(cfg->private_key_file)))
				return false;
			break;
		case ROOT_LISTEN_PORT:
			if (!get_uint(p, root_keys[idx], 0, UINT16_MAX, &v))
				return false;
			cfg->listen_port = (uint16_t)v;
			break;
		case ROOT_ADDRESS:
			if (!get_prefix_list(p, root_keys[idx], false, cfg->addresses, NULL, CONFIG_MAX_ADDRESSES,
					     &cfg->n_addresses))
				return false;
			break;
		case ROOT_MTU:
			if (!get_uint(p, root_keys[idx], CONFIG_MIN_MTU, CONFIG_MAX_MTU, &cfg->mtu))
				return false;
			mtu_mark = p->ev.start_mark;
			break;
		case ROOT_PEERS:
			if (!parse_peers(p))
				return false;
			break;
		case ROOT_N:
			return false;
		}
	}

	if (!seen[ROOT_PRIVATE_KEY_FILE] || !seen[ROOT_ADDRESS]) {
		fail_at(p, start, "missing required key '%s'",
			!seen[ROOT_PRIVATE_KEY_FILE] ? "private_key_file" : "address");
		return false;
	}
	if (cfg->mtu < CONFIG_IPV6_MIN_MTU) {
		for (size_t i = 0; i < cfg->n_addresses; i++) {
			char buf[IP_PREFIX_STR_MAX];

			if (cfg->addresses[i].family != AF_INET6)
				continue;
			fail_at(p, mtu_mark, "'mtu' %u is below %d, the IPv6 minimum, but address %s is IPv6",
				cfg->mtu, CONFIG_IPV6_MIN_MTU, ip_prefix_format(&cfg->addresses[i], buf, sizeof(buf)));
			return false;
		}
	}
	return check_prefix_owners(p);
}

static bool parse_stream(struct cfg_parser *p)
{
	yaml_mark_t start;

	if (!next_event(p))
		return false;
	if (p->ev.type != YAML_STREAM_START_EVENT) { /* libyaml always starts with it */
		fail_at(p, p->ev.start_mark, "internal YAML error: no stream start");
		return false;
	}
	if (!next_event(p))
		return false;
	if (p->ev.type == YAML_STREAM_END_EVENT) {
		fail_at(p, p->ev.start_mark, "the configuration is empty (expected settings such as 'address: ...')");
		return false;
	}
	/* The parser emits DOCUMENT_START before any content, even without "---". */
	if (!next_event(p))
		return false;
	start = p->ev.start_mark;
	if (p->ev.type != YAML_MAPPING_START_EVENT) {
		fail_at(p, start, "the configuration must be a mapping of settings ('key: value' lines), not %s",
			event_kind(&p->ev));
		return false;
	}
	if (!parse_root(p, start))
		return false;
	if (!next_event(p)) /* DOCUMENT_END: nothing else can follow a complete mapping */
		return false;
	if (!next_event(p))
		return false;
	if (p->ev.type != YAML_STREAM_END_EVENT) {
		fail_at(p, p->ev.start_mark, "only one YAML document is allowed in the configuration");
		return false;
	}
	return true;
}

static void wipe_reader(yaml_parser_t *yp)
{
	/* libyaml frees its input buffers without clearing them, and they hold the raw text,
	 * preshared keys included. */
	if (yp->buffer.start && yp->buffer.end > yp->buffer.start)
		sodium_memzero(yp->buffer.start, (size_t)(yp->buffer.end - yp->buffer.start));
	if (yp->raw_buffer.start && yp->raw_buffer.end > yp->raw_buffer.start)
		sodium_memzero(yp->raw_buffer.start, (size_t)(yp->raw_buffer.end - yp->raw_buffer.start));
}

static void config_set_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->interface, config_default_interface, sizeof(config_default_interface));
	cfg->listen_port = CONFIG_DEFAULT_LISTEN_PORT;
	cfg->mtu = CONFIG_DEFAULT_MTU;
}

bool config_parse(struct config *cfg, const char *source_name, const char *text, size_t len,
		  char *err, size_t err_len)
{
	struct cfg_parser p;
	bool ok;

	config_set_defaults(cfg);
	if (err_len)
		err[0] = '\0';
	memset(&p, 0, sizeof(p));
	p.source = source_name ? source_name : "config";
	p.text = text;
	p.len = len;
	p.err = err;
	p.err_len = err_len;
	p.cfg = cfg;

	if (!yaml_parser_initialize(&p.yp)) {
		snprintf(err, err_len, "%s: out of memory", p.source);
		return false;
	}
	/* Reads exactly len bytes: the text need not be NUL-terminated. UTF-8 only, so a
	 * reader error's byte offset maps straight onto the text. */
	yaml_parser_set_input_string(&p.yp, (const unsigned char *)text, len);
	yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);

	ok = parse_stream(&p);
	if (!ok && !p.failed) {
		yaml_mark_t mark;

		mark_from_offset(&p, 0, &mark);
		fail_at(&p, mark, "invalid configuration");
	}

	drop_event(&p);
	wipe_reader(&p.yp);
	yaml_parser_delete(&p.yp);
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

static bool read_file(const char *path, char **out, size_t *out_len, struct stat *st, char *err,
		      size_t err_len)
{
	char *buf = NULL;
	size_t got = 0;
	int fd;

	/* O_NONBLOCK: a FIFO must not hang start-up before fstat can refuse it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, st) < 0) {
		snprintf(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		goto fail;
	}
	if (st->st_size > CONFIG_FILE_MAX) {
		snprintf(err, err_len, "%s: file is too large (%lld bytes; at most %d)", path,
			 (long long)st->st_size, CONFIG_FILE_MAX);
		goto fail;
	}
	/* Read to EOF, not st_size: the file may be growing; one extra byte notices that. */
	buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf) {
		snprintf(err, err_len, "%s: out of memory", path);
		goto fail;
	}
	while (got <= CONFIG_FILE_MAX) {
		ssize_t n = read(fd, buf + got, CONFIG_FILE_MAX + 1 - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > CONFIG_FILE_MAX) {
		snprintf(err, err_len, "%s: file is too large (at most %d bytes)", path, CONFIG_FILE_MAX);
		goto fail;
	}
	close(fd);
	*out = buf;
	*out_len = got;
	return true;
fail:
	if (buf) {
		sodium_memzero(buf, got);
		free(buf);
	}
	close(fd);
	return false;
}

/* A relative private_key_file is taken relative to the config file's directory, so the
 * daemon finds it whatever its working directory is (systemd starts it in "/"). */
static bool resolve_key_path(struct config *cfg, const char *path, char *err, size_t err_len)
{
	const char *slash = strrchr(path, '/');
	char joined[CONFIG_PATH_MAX];
	int n;

	if (cfg->private_key_file[0] == '/' || !slash)
		return true;
	n = snprintf(joined, sizeof(joined), "%.*s/%s", (int)(slash - path), path, cfg->private_key_file);
	if (n < 0 || (size_t)n >= sizeof(joined)) {
		snprintf(err, err_len, "%s: private_key_file path is too long once joined to the config directory",
			 path);
		return false;
	}
	memcpy(cfg->private_key_file, joined, (size_t)n + 1);
	return true;
}

bool config_load(struct config *cfg, const char *path, char *err, size_t err_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	bool ok;

	config_set_defaults(cfg);
	if (!read_file(path, &text, &len, &st, err, err_len))
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
