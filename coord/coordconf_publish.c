/* publish: in meshcoord's config (issue 11): the public ports an administrator may grant to
 * nodes (`meshcoord publish allow`), the address they listen on, and the per-service limits.
 * Absent: nothing is ever published. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coordconf.h"

enum pub_key { PUB_PORTS, PUB_BIND, PUB_MAX_CONNECTIONS, PUB_IDLE_TIMEOUT, PUB_UDP_TIMEOUT, PUB_N };
static const char *const pub_keys[PUB_N] = {
	[PUB_PORTS] = "ports",
	[PUB_BIND] = "bind",
	[PUB_MAX_CONNECTIONS] = "max_connections",
	[PUB_IDLE_TIMEOUT] = "idle_timeout",
	[PUB_UDP_TIMEOUT] = "udp_timeout",
};

static bool port_parse(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || s[0] == '0')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

bool coordconf_port_range_parse(const char *s, uint16_t *lo, uint16_t *hi)
{
	const char *dash = strchr(s, '-');
	size_t len = strlen(s);

	if (!dash) {
		if (!port_parse(s, len, lo))
			return false;
		*hi = *lo;
		return true;
	}
	return port_parse(s, (size_t)(dash - s), lo) && port_parse(dash + 1, len - (size_t)(dash - s) - 1, hi) &&
	       *lo <= *hi;
}

bool coordconf_parse_publish(struct yamlread *r, struct coord_config *cfg)
{
	struct coord_publish_config *p = &cfg->publish;
	size_t seen[PUB_N] = { 0 }, idx;
	char q[YAMLREAD_QUOTE_BUF];
	unsigned int v;
	bool done;

	memset(p, 0, sizeof(*p));
	memcpy(p->bind_host, "0.0.0.0", sizeof("0.0.0.0"));
	p->max_connections = COORDCONF_PUBLISH_DEFAULT_MAX_CONNECTIONS;
	p->idle_timeout_s = COORDCONF_PUBLISH_DEFAULT_IDLE_S;
	p->udp_timeout_s = COORDCONF_PUBLISH_DEFAULT_UDP_IDLE_S;
	if (!yamlread_next(r))
		return false;
	yaml_mark_t start = r->ev.start_mark;
	if (r->ev.type != YAML_MAPPING_START_EVENT) {
		yamlread_fail(r, start, "'publish' must be a mapping (e.g. {ports: 20000-20099}), not %s", yamlread_kind(r));
		return false;
	}
	for (;;) {
		if (!yamlread_key(r, pub_keys, PUB_N, seen, "publish ", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum pub_key)idx) {
		case PUB_PORTS:
			if (!yamlread_scalar(r, pub_keys[idx]))
				return false;
			if (!coordconf_port_range_parse(yamlread_value(r), &p->port_lo, &p->port_hi)) {
				yamlread_fail(r, r->ev.start_mark,
					      "'ports': '%s' is not a port or a range of ports LOW-HIGH from 1 to 65535 (e.g. 20000-20099)",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		case PUB_BIND: {
			struct in6_addr a;
			if (!yamlread_string(r, pub_keys[idx], p->bind_host, sizeof(p->bind_host)))
				return false;
			if (inet_pton(AF_INET, p->bind_host, &a) != 1 && inet_pton(AF_INET6, p->bind_host, &a) != 1) {
				yamlread_fail(r, r->ev.start_mark, "'bind': '%s' is not an IP address (e.g. 203.0.113.10, or :: for IPv6 too)",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		}
		case PUB_MAX_CONNECTIONS:
			if (!yamlread_uint(r, pub_keys[idx], 1, COORDCONF_PUBLISH_MAX_CONNECTIONS, &v))
				return false;
			p->max_connections = v;
			break;
		case PUB_IDLE_TIMEOUT:
			if (!yamlread_uint(r, pub_keys[idx], 1, COORDCONF_PUBLISH_MAX_IDLE_S, &v))
				return false;
			p->idle_timeout_s = v;
			break;
		case PUB_UDP_TIMEOUT:
			if (!yamlread_uint(r, pub_keys[idx], 1, COORDCONF_PUBLISH_MAX_IDLE_S, &v))
				return false;
			p->udp_timeout_s = v;
			break;
		case PUB_N:
			return false;
		}
	}
	if (!seen[PUB_PORTS]) {
		yamlread_fail(r, start, "'publish' needs 'ports', the public ports nodes may be granted (e.g. ports: 20000-20099)");
		return false;
	}
	p->enabled = true;
	return true;
}
