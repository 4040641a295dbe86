/* publish: in the node's config (issue 11): services to publish on the coordinator's public
 * address, each {name, local, public_port, protocol, proxy_protocol}. The coordinator decides
 * whether each is published (a grant by its admin); this only says what we ask for. */
#include <arpa/inet.h>
#include <string.h>

#include "core/control.h"
#include "core/yamlread.h"
#include "meshd/config.h"

enum svc_key { SVC_NAME, SVC_LOCAL, SVC_PUBLIC_PORT, SVC_PROTOCOL, SVC_PROXY_PROTOCOL, SVC_N };
static const char *const svc_keys[SVC_N] = {
	[SVC_NAME] = "name",
	[SVC_LOCAL] = "local",
	[SVC_PUBLIC_PORT] = "public_port",
	[SVC_PROTOCOL] = "protocol",
	[SVC_PROXY_PROTOCOL] = "proxy_protocol",
};

static bool read_local(struct yamlread *r, struct config_publish *p)
{
	char host[ENDPOINT_HOST_MAX], q[YAMLREAD_QUOTE_BUF];
	struct in6_addr a;

	if (!yamlread_scalar(r, svc_keys[SVC_LOCAL]))
		return false;
	if (!endpoint_parse(yamlread_value(r), host, sizeof(host), &p->local_port) || strlen(host) >= sizeof(p->local_host) ||
	    (inet_pton(AF_INET, host, &a) != 1 && inet_pton(AF_INET6, host, &a) != 1)) {
		yamlread_fail(r, r->ev.start_mark,
			      "'local': '%s' is not an IP address and port where the service listens (e.g. 127.0.0.1:8080)",
			      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
		return false;
	}
	memcpy(p->local_host, host, strlen(host) + 1);
	return true;
}

static bool parse_service(struct yamlread *r, struct config *cfg, struct config_publish *p, yaml_mark_t start)
{
	size_t seen[SVC_N] = { 0 }, idx;
	char q[YAMLREAD_QUOTE_BUF];
	unsigned int v;
	bool done;

	memset(p, 0, sizeof(*p));
	p->proto = CONTROL_PROTO_TCP;
	for (;;) {
		if (!yamlread_key(r, svc_keys, SVC_N, seen, "publish ", &idx, &done))
			return false;
		if (done)
			break;
		switch ((enum svc_key)idx) {
		case SVC_NAME:
			if (!yamlread_string(r, svc_keys[idx], p->name, sizeof(p->name)))
				return false;
			if (!control_name_valid(p->name)) {
				yamlread_fail(r, r->ev.start_mark, "'name': '%s' must be 1 to 63 of A-Z a-z 0-9 . _ -",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		case SVC_LOCAL:
			if (!read_local(r, p))
				return false;
			break;
		case SVC_PUBLIC_PORT:
			if (!yamlread_uint(r, svc_keys[idx], 1, 65535, &v))
				return false;
			p->public_port = (uint16_t)v;
			break;
		case SVC_PROTOCOL:
			if (!yamlread_scalar(r, svc_keys[idx]))
				return false;
			if (strcmp(yamlread_value(r), "tcp") == 0) {
				p->proto = CONTROL_PROTO_TCP;
			} else if (strcmp(yamlread_value(r), "udp") == 0) {
				p->proto = CONTROL_PROTO_UDP;
			} else {
				yamlread_fail(r, r->ev.start_mark, "'protocol': '%s' is not tcp or udp",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		case SVC_PROXY_PROTOCOL:
			if (!yamlread_scalar(r, svc_keys[idx]))
				return false;
			if (strcmp(yamlread_value(r), "true") == 0) {
				p->proxy_protocol = true;
			} else if (strcmp(yamlread_value(r), "false") != 0) {
				yamlread_fail(r, r->ev.start_mark, "'proxy_protocol': '%s' is not true or false",
					      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
				return false;
			}
			break;
		case SVC_N:
			return false;
		}
	}
	if (!seen[SVC_NAME] || !seen[SVC_LOCAL] || !seen[SVC_PUBLIC_PORT]) {
		yamlread_fail(r, start, "each publish entry needs 'name', 'local' and 'public_port' "
					"(e.g. {name: web, local: 127.0.0.1:8080, public_port: 20080})");
		return false;
	}
	if (p->proxy_protocol && p->proto == CONTROL_PROTO_UDP) {
		yamlread_fail(r, start, "'proxy_protocol' is for tcp services only (a UDP service gets no header)");
		return false;
	}
	for (size_t i = 0; i < cfg->n_publish; i++) {
		const struct config_publish *o = &cfg->publish[i];
		if (strcmp(o->name, p->name) == 0 || (o->proto == p->proto && o->public_port == p->public_port)) {
			yamlread_fail(r, start, "publish entry '%s' repeats the name or the public port of '%s'", p->name,
				      o->name);
			return false;
		}
	}
	return true;
}

bool config_parse_publish(struct yamlread *r, struct config *cfg)
{
	bool has_items;
	int item;

	cfg->n_publish = 0;
	if (!yamlread_mapping_list_begin(r, "publish", "services", &has_items))
		return false;
	if (!has_items)
		return true;
	while ((item = yamlread_mapping_list_next(
			r, "each publish entry must be a mapping (name: ..., local: ..., public_port: ...)")) > 0) {
		if (cfg->n_publish == CONFIG_MAX_PUBLISH) {
			yamlread_fail(r, r->ev.start_mark, "too many publish entries (at most %d)", CONFIG_MAX_PUBLISH);
			return false;
		}
		if (!parse_service(r, cfg, &cfg->publish[cfg->n_publish], r->ev.start_mark))
			return false;
		cfg->n_publish++;
	}
	return item == 0;
}
