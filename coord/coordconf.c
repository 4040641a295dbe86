/* meshcoord's YAML configuration: a flat mapping, read strictly through core/yamlread. */
#include "coord/coordconf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/control.h"
#include "core/dns.h"
#include "core/relay.h"
#include "core/stun.h"
#include "core/yamlread.h"

enum {
	COORDCONF_FILE_MAX = 1 << 20, /* a few settings: anything near this is not a config file */
};

static const char coordconf_default_listen_host[] = "0.0.0.0";
static const char coordconf_key_file[] = "coord.key";
static const char coordconf_db_file[] = "registry.db";

enum root_key {
	ROOT_LISTEN,
	ROOT_STUN_LISTEN,
	ROOT_STUN_LISTEN_ALT,
	ROOT_PUBLIC_ADDRESS,
	ROOT_STATE_DIR,
	ROOT_RELAY_RATE_LIMIT,
	ROOT_RELAY_BURST,
	ROOT_RELAY_BIND_FRESH,
	ROOT_METRICS_LISTEN,
	ROOT_LOG_LEVEL,
	ROOT_DNS_DOMAIN,
	ROOT_AUTO_APPROVE_ROUTES,
	ROOT_POLICY_FILE,
	ROOT_PUBLISH,
	ROOT_N
};
static const char *const root_keys[ROOT_N] = {
	[ROOT_LISTEN] = "listen",
	[ROOT_STUN_LISTEN] = "stun_listen",
	[ROOT_STUN_LISTEN_ALT] = "stun_listen_alt",
	[ROOT_PUBLIC_ADDRESS] = "public_address",
	[ROOT_STATE_DIR] = "state_dir",
	[ROOT_RELAY_RATE_LIMIT] = "relay_rate_limit",
	[ROOT_RELAY_BURST] = "relay_burst",
	[ROOT_RELAY_BIND_FRESH] = "relay_bind_fresh",
	[ROOT_METRICS_LISTEN] = "metrics_listen",
	[ROOT_LOG_LEVEL] = "log_level",
	[ROOT_DNS_DOMAIN] = "dns_domain",
	[ROOT_AUTO_APPROVE_ROUTES] = "auto_approve_routes",
	[ROOT_POLICY_FILE] = "policy_file",
	[ROOT_PUBLISH] = "publish",
};

static void coordconf_set_defaults(struct coord_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	memcpy(cfg->listen_host, coordconf_default_listen_host, sizeof(coordconf_default_listen_host));
	cfg->listen_port = CONTROL_DEFAULT_PORT;
	memcpy(cfg->stun_host, coordconf_default_listen_host, sizeof(coordconf_default_listen_host));
	cfg->stun_port = STUN_DEFAULT_PORT;
	memcpy(cfg->stun_alt_host, coordconf_default_listen_host, sizeof(coordconf_default_listen_host));
	cfg->stun_alt_port = COORDCONF_DEFAULT_STUN_ALT_PORT;
	cfg->relay_rate_limit = COORDCONF_DEFAULT_RELAY_RATE;
	cfg->relay_burst = COORDCONF_DEFAULT_RELAY_RATE; /* one second at the rate */
	cfg->relay_bind_fresh_s = COORDCONF_DEFAULT_RELAY_BIND_FRESH_S;
	cfg->log_level = LOG_LEVEL_INFO;
	memcpy(cfg->state_dir, COORDCONF_DEFAULT_STATE_DIR, sizeof(COORDCONF_DEFAULT_STATE_DIR));
	memcpy(cfg->dns_domain, COORDCONF_DEFAULT_DNS_DOMAIN, sizeof(COORDCONF_DEFAULT_DNS_DOMAIN));
}

static bool is_ip_literal(const char *host, bool *unspecified)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (inet_pton(AF_INET, host, &a4) == 1) {
		*unspecified = a4.s_addr == htonl(INADDR_ANY);
		return true;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		*unspecified = IN6_IS_ADDR_UNSPECIFIED(&a6);
		return true;
	}
	return false;
}

/* A listener: an IP address (not a name: what a name resolves to can change under a
 * running server, and binding should not wait for DNS) and a port. */
static bool parse_listen(struct yamlread *r, const char *key, const char *example, char *host, uint16_t *port)
{
	char q[YAMLREAD_QUOTE_BUF], h[ENDPOINT_HOST_MAX];
	uint16_t p;
	bool unspecified;

	if (!endpoint_parse(yamlread_value(r), h, sizeof(h), &p) || !is_ip_literal(h, &unspecified)) {
		yamlread_fail(r, r->ev.start_mark,
			      "'%s': '%s' is not an IP address and port (e.g. %s, or [::]:%s for IPv6 too)", key,
			      yamlread_quote(yamlread_value(r), yamlread_len(r), q), example, strchr(example, ':') + 1);
		return false;
	}
	memcpy(host, h, strlen(h) + 1);
	*port = p;
	return true;
}

static bool get_listen(struct yamlread *r, const char *key, const char *example, char *host, uint16_t *port)
{
	return yamlread_scalar(r, key) && parse_listen(r, key, example, host, port);
}

/* The second STUN port: a listener like stun_listen, or "off" (or empty) for none. */
static bool get_listen_alt(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_STUN_LISTEN_ALT];

	if (!yamlread_scalar(r, key))
		return false;
	cfg->stun_alt_explicit = true;
	if (yamlread_len(r) == 0 || yamlread_is_null(r) || strcmp(yamlread_value(r), "off") == 0) {
		cfg->stun_alt_host[0] = '\0';
		cfg->stun_alt_port = 0;
		return true;
	}
	return parse_listen(r, key, "0.0.0.0:3479", cfg->stun_alt_host, &cfg->stun_alt_port);
}

/* The metrics page: "off" (or empty), a bare port (on COORDCONF_DEFAULT_METRICS_HOST), or an
 * address and port written out: any other address than loopback must be, so that opening
 * the counters to a network is never an accident of a default. */
static bool get_metrics_listen(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_METRICS_LISTEN];
	const char *v;
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	v = yamlread_value(r);
	if (yamlread_len(r) == 0 || yamlread_is_null(r) || strcmp(v, "off") == 0) {
		cfg->metrics_host[0] = '\0';
		cfg->metrics_port = 0;
		return true;
	}
	if (strspn(v, "0123456789") == yamlread_len(r)) {
		char *end;
		unsigned long port = strtoul(v, &end, 10);
		if (yamlread_len(r) > 5 || port == 0 || port > UINT16_MAX) {
			yamlread_fail(r, r->ev.start_mark, "'%s': port '%s' is not from 1 to 65535", key,
				      yamlread_quote(v, yamlread_len(r), q));
			return false;
		}
		memcpy(cfg->metrics_host, COORDCONF_DEFAULT_METRICS_HOST, sizeof(COORDCONF_DEFAULT_METRICS_HOST));
		cfg->metrics_port = (uint16_t)port;
		return true;
	}
	return parse_listen(r, key, "127.0.0.1:9464", cfg->metrics_host, &cfg->metrics_port);
}

static bool get_log_level(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_LOG_LEVEL];
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	if (!log_level_parse(yamlread_value(r), &cfg->log_level)) {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' is not one of error, warn, info, debug", key,
			      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
		return false;
	}
	cfg->has_log_level = true;
	return true;
}

static bool get_dns_domain(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_DNS_DOMAIN];
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, key))
		return false;
	const char *v = yamlread_value(r);
	size_t len = yamlread_len(r);
	if (len > CONTROL_DOMAIN_MAX || strlen(v) != len || !dns_domain_valid(v)) {
		yamlread_fail(r, r->ev.start_mark,
			      "'%s': '%s' is not a DNS domain in lower case: labels of a-z, 0-9 and '-' joined by "
			      "dots, at most %d characters, no final dot (e.g. mesh.internal)",
			      key, yamlread_quote(v, len, q), CONTROL_DOMAIN_MAX);
		return false;
	}
	memcpy(cfg->dns_domain, v, len + 1);
	return true;
}

/* After parsing: what was left unset follows what was set. */
static void resolve_defaults(struct coord_config *cfg, const size_t *seen)
{
	if (!seen[ROOT_STUN_LISTEN_ALT]) {
		memcpy(cfg->stun_alt_host, cfg->stun_host, sizeof(cfg->stun_alt_host));
		cfg->stun_alt_port =
			cfg->stun_port == COORDCONF_DEFAULT_STUN_ALT_PORT ? STUN_DEFAULT_PORT : COORDCONF_DEFAULT_STUN_ALT_PORT;
	}
	if (!seen[ROOT_RELAY_BURST])
		cfg->relay_burst = cfg->relay_rate_limit > RELAY_MAX_FRAME ? cfg->relay_rate_limit : RELAY_MAX_FRAME;
}

/* Where nodes reach the control listener from outside: goes into every join key, so it must
 * be something a node can connect to (a name is fine: it is resolved by the node). */
static bool get_public_address(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_PUBLIC_ADDRESS];
	char q[YAMLREAD_QUOTE_BUF];
	bool unspecified = false;

	if (!yamlread_scalar(r, key))
		return false;
	if (!endpoint_parse(yamlread_value(r), cfg->public_host, sizeof(cfg->public_host), &cfg->public_port)) {
		yamlread_fail(r, r->ev.start_mark,
			      "'%s': '%s' is not host:port or [IPv6]:port with a port from 1 to 65535 (e.g. 203.0.113.10:%d)",
			      key, yamlread_quote(yamlread_value(r), yamlread_len(r), q), CONTROL_DEFAULT_PORT);
		return false;
	}
	if (is_ip_literal(cfg->public_host, &unspecified) && unspecified) {
		yamlread_fail(r, r->ev.start_mark,
			      "'%s': '%s' is not an address nodes can connect to; give this server's public address or name",
			      key, yamlread_quote(yamlread_value(r), yamlread_len(r), q));
		return false;
	}
	return true;
}

static bool get_state_dir(struct yamlread *r, struct coord_config *cfg)
{
	const char *key = root_keys[ROOT_STATE_DIR];
	char q[YAMLREAD_QUOTE_BUF], probe[COORDCONF_PATH_MAX];
	size_t len;

	if (!yamlread_string(r, key, cfg->state_dir, sizeof(cfg->state_dir)))
		return false;
	/* Relative to what? systemd starts us in "/", a shell anywhere: say it once, here. */
	if (cfg->state_dir[0] != '/') {
		yamlread_fail(r, r->ev.start_mark, "'%s': '%s' must be an absolute path (starting with '/')", key,
			      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
		return false;
	}
	len = strlen(cfg->state_dir);
	while (len > 1 && cfg->state_dir[len - 1] == '/')
		cfg->state_dir[--len] = '\0';
	/* Both files must have a path, or the server would fail later at start-up. */
	if (!coordconf_key_path(cfg, probe, sizeof(probe)) || !coordconf_db_path(cfg, probe, sizeof(probe))) {
		yamlread_fail(r, r->ev.start_mark, "'%s' is too long (the files in it need paths under %d characters)",
			      key, COORDCONF_PATH_MAX);
		return false;
	}
	return true;
}

static bool parse_root(struct yamlread *r, struct coord_config *cfg, yaml_mark_t start)
{
	size_t seen[ROOT_N] = { 0 };
	size_t idx;
	bool done;

	for (;;) {
		if (!yamlread_key(r, root_keys, ROOT_N, seen, "", &idx, &done))
			return false;
		if (done) {
			resolve_defaults(cfg, seen);
			break;
		}
		switch ((enum root_key)idx) {
		case ROOT_LISTEN:
			if (!get_listen(r, root_keys[idx], "0.0.0.0:51821", cfg->listen_host, &cfg->listen_port))
				return false;
			break;
		case ROOT_STUN_LISTEN:
			if (!get_listen(r, root_keys[idx], "0.0.0.0:3478", cfg->stun_host, &cfg->stun_port))
				return false;
			break;
		case ROOT_STUN_LISTEN_ALT:
			if (!get_listen_alt(r, cfg))
				return false;
			break;
		case ROOT_RELAY_RATE_LIMIT: {
			unsigned int v;
			if (!yamlread_uint(r, root_keys[idx], 0, UINT32_MAX, &v))
				return false;
			cfg->relay_rate_limit = v;
			break;
		}
		case ROOT_RELAY_BURST: {
			/* Below one frame, no frame could ever pass. */
			unsigned int v;
			if (!yamlread_uint(r, root_keys[idx], RELAY_MAX_FRAME, UINT32_MAX, &v))
				return false;
			cfg->relay_burst = v;
			break;
		}
		case ROOT_RELAY_BIND_FRESH: {
			unsigned int v;
			if (!yamlread_uint(r, root_keys[idx], 1, COORDCONF_MAX_RELAY_BIND_FRESH_S, &v))
				return false;
			cfg->relay_bind_fresh_s = v;
			break;
		}
		case ROOT_PUBLIC_ADDRESS:
			if (!get_public_address(r, cfg))
				return false;
			break;
		case ROOT_STATE_DIR:
			if (!get_state_dir(r, cfg))
				return false;
			break;
		case ROOT_METRICS_LISTEN:
			if (!get_metrics_listen(r, cfg))
				return false;
			break;
		case ROOT_LOG_LEVEL:
			if (!get_log_level(r, cfg))
				return false;
			break;
		case ROOT_DNS_DOMAIN:
			if (!get_dns_domain(r, cfg))
				return false;
			break;
		case ROOT_AUTO_APPROVE_ROUTES:
			if (!coordconf_parse_auto_approve(r, cfg))
				return false;
			break;
		case ROOT_PUBLISH:
			if (!coordconf_parse_publish(r, cfg))
				return false;
			break;
		case ROOT_POLICY_FILE: {
			char q[YAMLREAD_QUOTE_BUF];
			if (!yamlread_string(r, root_keys[idx], cfg->policy_file, sizeof(cfg->policy_file)))
				return false;
			/* Relative to what? The same reason as state_dir. */
			if (cfg->policy_file[0] != '/') {
				yamlread_fail(r, r->ev.start_mark, "'%s': '%s' must be an absolute path (starting with '/')",
					      root_keys[idx], yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		}
		case ROOT_N:
			return false;
		}
	}
	if (!seen[ROOT_PUBLIC_ADDRESS]) {
		yamlread_fail(r, start,
			      "missing required key 'public_address' (the host:port nodes connect to, e.g. 203.0.113.10:%d)",
			      CONTROL_DEFAULT_PORT);
		return false;
	}
	if (cfg->stun_alt_port && cfg->stun_alt_port == cfg->stun_port && strcmp(cfg->stun_alt_host, cfg->stun_host) == 0) {
		yamlread_fail(r, start, "'stun_listen_alt' must differ from 'stun_listen' (or be off)");
		return false;
	}
	return true;
}

bool coordconf_parse(struct coord_config *cfg, const char *source_name, const char *text, size_t len, char *err,
		     size_t err_len)
{
	struct yamlread r;
	yaml_mark_t start;
	bool ok;

	coordconf_set_defaults(cfg);
	if (!yamlread_init(&r, source_name ? source_name : "config", text, len, err, err_len))
		return false;
	ok = yamlread_begin(&r, "configuration", "public_address: ...", &start) && parse_root(&r, cfg, start) &&
	     yamlread_end(&r, "configuration");
	if (!ok && !r.failed) {
		const yaml_mark_t top = { 0 }; /* line 1, column 1 */

		yamlread_fail(&r, top, "invalid configuration");
	}
	yamlread_cleanup(&r);
	if (!ok)
		coordconf_set_defaults(cfg);
	return ok;
}

bool coordconf_load(struct coord_config *cfg, const char *path, char *err, size_t err_len)
{
	struct stat st;
	char *text = NULL;
	size_t len = 0;
	bool ok;

	coordconf_set_defaults(cfg);
	if (!yamlread_load_file(path, COORDCONF_FILE_MAX, &text, &len, &st, err, err_len))
		return false;
	ok = coordconf_parse(cfg, path, text, len, err, err_len);
	sodium_memzero(text, len);
	free(text);
	return ok;
}

static bool state_file(const struct coord_config *cfg, const char *name, char *out, size_t cap)
{
	size_t dir_len = strnlen(cfg->state_dir, sizeof(cfg->state_dir));
	int n;

	if (dir_len == 0 || dir_len >= sizeof(cfg->state_dir) || cap == 0)
		return false;
	/* "/" is the one directory that already ends in a slash. */
	n = snprintf(out, cap, "%s%s%s", cfg->state_dir, cfg->state_dir[dir_len - 1] == '/' ? "" : "/", name);
	if (n < 0 || (size_t)n >= cap) {
		out[0] = '\0';
		return false;
	}
	return true;
}

bool coordconf_key_path(const struct coord_config *cfg, char *out, size_t cap)
{
	return state_file(cfg, coordconf_key_file, out, cap);
}

bool coordconf_db_path(const struct coord_config *cfg, char *out, size_t cap)
{
	return state_file(cfg, coordconf_db_file, out, cap);
}
