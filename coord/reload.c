/* SIGHUP: meshcoord reads its configuration file again. What can change while serving
 * changes at once (log_level, the relay's limits); a setting that needs a restart (a
 * listener's address, state_dir) is named in one log line each and left as it runs. A file
 * that does not parse changes nothing: the parser's error is logged and serving goes on. */
#include <string.h>

#include "coord/server_internal.h"

void coord_server_set_config(struct coord_server *s, const char *path, const struct coord_config *cfg,
			     bool log_level_from_cmdline)
{
	snprintf(s->config_path, sizeof(s->config_path), "%s", path);
	s->cfg = *cfg;
	s->log_level_from_cmdline = log_level_from_cmdline;
}

static bool listen_differs(const char *ha, uint16_t pa, const char *hb, uint16_t pb)
{
	return pa != pb || strcmp(ha, hb) != 0;
}

static void needs_restart(const char *key)
{
	log_warn("SIGHUP: '%s' changed; it takes effect when meshcoord restarts", key);
}

void coord_server_reload(struct coord_server *s)
{
	struct coord_config n;
	char err[1024];
	struct coord_config *run = &s->cfg;

	if (!s->config_path[0]) {
		policy_push_reload(s, s->policy.path, "SIGHUP");
		return;
	}
	if (!coordconf_load(&n, s->config_path, err, sizeof(err))) {
		log_error("SIGHUP: %s; the running configuration stays", err);
		return;
	}
	/* SIGHUP also reads the policy again, even if nothing else changed. */
	/* Restart needed: these are sockets and files opened once. */
	if (listen_differs(run->listen_host, run->listen_port, n.listen_host, n.listen_port))
		needs_restart("listen");
	if (listen_differs(run->stun_host, run->stun_port, n.stun_host, n.stun_port))
		needs_restart("stun_listen");
	if (listen_differs(run->stun_alt_host, run->stun_alt_port, n.stun_alt_host, n.stun_alt_port))
		needs_restart("stun_listen_alt");
	if (listen_differs(run->metrics_host, run->metrics_port, n.metrics_host, n.metrics_port))
		needs_restart("metrics_listen");
	if (strcmp(run->state_dir, n.state_dir) != 0)
		needs_restart("state_dir");
	if (memcmp(&run->publish, &n.publish, sizeof(n.publish)) != 0) {
		/* Live: limits apply to new streams and the next tick; the port range and on/off
		 * re-judge every request (listeners open and close to match). */
		log_info("SIGHUP: 'publish' changed (ports %u-%u, bind %s); applied now", (unsigned int)n.publish.port_lo,
			 (unsigned int)n.publish.port_hi, n.publish.enabled ? n.publish.bind_host : "off");
		bool bind_changed = strcmp(run->publish.bind_host, n.publish.bind_host) != 0;
		run->publish = n.publish;
		if (bind_changed) /* close every listener; the reload opens them on the new address */
			while (s->pub.services)
				publish_close_service(s, s->pub.services);
		publish_grants_reload(s);
	}

	/* Live. */
	enum log_level level = n.has_log_level ? n.log_level : LOG_LEVEL_INFO;
	if (n.has_log_level != run->has_log_level || level != log_get_level()) {
		if (s->log_level_from_cmdline) {
			log_info("SIGHUP: 'log_level' in the file is ignored: --log-level on the command line wins");
		} else if (level != log_get_level()) {
			log_info("SIGHUP: log_level %s -> %s", log_level_name(log_get_level()), log_level_name(level));
			log_set_level(level);
		}
	}
	run->has_log_level = n.has_log_level;
	run->log_level = n.log_level;
	if (n.relay_rate_limit != run->relay_rate_limit || n.relay_burst != run->relay_burst) {
		log_info("SIGHUP: relay limit per node %u -> %u bytes/s (0: none), burst %u -> %u bytes",
			 (unsigned int)run->relay_rate_limit, (unsigned int)n.relay_rate_limit,
			 (unsigned int)run->relay_burst, (unsigned int)n.relay_burst);
		run->relay_rate_limit = s->relay_rate = n.relay_rate_limit;
		run->relay_burst = s->relay_burst = n.relay_burst;
	}
	if (n.relay_bind_fresh_s != run->relay_bind_fresh_s) {
		log_info("SIGHUP: relay_bind_fresh %u -> %u s", (unsigned int)run->relay_bind_fresh_s,
			 (unsigned int)n.relay_bind_fresh_s);
		run->relay_bind_fresh_s = n.relay_bind_fresh_s;
		s->relay_bind_fresh_ms = (uint64_t)n.relay_bind_fresh_s * 1000u;
	}
	if (strcmp(run->dns_domain, n.dns_domain) != 0) {
		log_info("SIGHUP: dns_domain %s -> %s (sent to every node now)", run->dns_domain, n.dns_domain);
		memcpy(run->dns_domain, n.dns_domain, sizeof(run->dns_domain));
		for (struct conn *c = s->active_list.head; c; c = c->next)
			if (!c->dead)
				dispatch_send_dns(s, c);
	}
	/* Only join keys carry it, and 'meshcoord authkey create' reads the file itself. */
	if (strcmp(run->public_host, n.public_host) != 0 || run->public_port != n.public_port) {
		log_info("SIGHUP: public_address is now %s:%u (for join keys created from now on)", n.public_host,
			 (unsigned int)n.public_port);
		memcpy(run->public_host, n.public_host, sizeof(run->public_host));
		run->public_port = n.public_port;
	}
	if (n.n_auto_approve != run->n_auto_approve ||
	    memcmp(n.auto_approve, run->auto_approve, n.n_auto_approve * sizeof(n.auto_approve[0])) != 0) {
		log_info("SIGHUP: %zu auto_approve_routes rule(s) now (applied to routes advertised from now on)",
			 n.n_auto_approve);
		memcpy(run->auto_approve, n.auto_approve, sizeof(run->auto_approve));
		run->n_auto_approve = n.n_auto_approve;
	}
	memcpy(run->policy_file, n.policy_file, sizeof(run->policy_file));
	log_info("SIGHUP: configuration %s read again", s->config_path);
	policy_push_reload(s, run->policy_file, "SIGHUP");
}
