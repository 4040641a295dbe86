/* SIGHUP: meshd reads its configuration file again (reload.h).
 *
 * Strategy: parse the whole file first; a file that does not parse (or names this node's
 * own key as a peer) changes nothing, and the parser's error is logged. Then, in order:
 * settings that need a restart are named (one line each) and keep their running value;
 * log_level, cookie_threshold and max_peers are set; static peers gone from the file are
 * removed, new ones added, and changed ones updated in place (name, endpoint, allowed_ips,
 * persistent_keepalive), so their sessions survive; a changed preshared key replaces the
 * peer (its sessions were made with the old key). Peers from the coordinator are not
 * touched. The new file becomes the running configuration, with the restart-needing
 * settings kept as they run, so the next SIGHUP names them again until the restart. */
#include "meshd/publish.h"
#include "meshd/reload.h"
#include "meshd/meshroutes.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/ipaddr.h"
#include "meshd/device.h"
#include "meshd/peer.h"

enum {
	RELOAD_ERR_MAX = 1024,
	RELOAD_LIST_MAX = 256, /* allowed_ips in a log line; longer lists end in "..." */
};

void reload_init(struct device *dev, const char *config_path, struct config *running, bool log_level_from_cmdline)
{
	dev->config_path = config_path;
	dev->running_cfg = running;
	dev->log_level_from_cmdline = log_level_from_cmdline;
}

static void needs_restart(const char *key)
{
	log_warn("SIGHUP: '%s' changed; it takes effect when meshd restarts", key);
}

/* Names every restart-needing setting that differs, and puts the running value back in n. */
static void keep_restart_settings(struct config *n, const struct config *run)
{
#define KEEP_STRING(field, key)                                                   \
	if (strcmp(n->field, run->field) != 0) {                                  \
		needs_restart(key);                                               \
		memcpy(n->field, run->field, sizeof(n->field));                   \
	}
#define KEEP_VALUE(field, key)                                                    \
	if (n->field != run->field) {                                             \
		needs_restart(key);                                               \
		n->field = run->field;                                            \
	}
	KEEP_STRING(interface, "interface")
	KEEP_STRING(private_key_file, "private_key_file")
	KEEP_STRING(state_dir, "state_dir")
	KEEP_STRING(join_key_file, "join_key_file")
	KEEP_STRING(control_socket, "control_socket")
	KEEP_STRING(control_group, "control_group")
	KEEP_STRING(user, "user")
	KEEP_VALUE(listen_port, "listen_port")
	KEEP_VALUE(mtu, "mtu")
	KEEP_VALUE(dns, "dns")                   /* resolved's link settings are made at start */
	KEEP_VALUE(dns_resolved, "dns_resolved")
#undef KEEP_STRING
#undef KEEP_VALUE
	if (n->n_addresses != run->n_addresses ||
	    memcmp(n->addresses, run->addresses, n->n_addresses * sizeof(n->addresses[0])) != 0) {
		needs_restart("address");
		memcpy(n->addresses, run->addresses, sizeof(n->addresses));
		n->n_addresses = run->n_addresses;
	}
}

static void apply_settings(struct device *dev, const struct config *n)
{
	enum log_level level = n->has_log_level ? n->log_level : LOG_LEVEL_INFO;

	if (n->has_log_level && dev->log_level_from_cmdline)
		log_info("SIGHUP: 'log_level' in the file is ignored: --log-level on the command line wins");
	else if (!dev->log_level_from_cmdline && level != log_get_level()) {
		log_info("SIGHUP: log_level %s -> %s", log_level_name(log_get_level()), log_level_name(level));
		log_set_level(level);
	}
	if (n->cookie_threshold != dev->cookies.threshold) {
		log_info("SIGHUP: cookie_threshold %u -> %u", dev->cookies.threshold, n->cookie_threshold);
		dev->cookies.threshold = n->cookie_threshold;
	}
	if (n->max_peers != dev->max_peers) {
		/* Maps from now on: peers already added beyond it stay until the next map. */
		log_info("SIGHUP: max_peers %zu -> %u", dev->max_peers, n->max_peers);
		dev->max_peers = n->max_peers;
	}
}

static const struct config_peer *find_peer(const struct config *cfg, const uint8_t key[WIRE_KEY_LEN])
{
	for (size_t i = 0; i < cfg->n_peers; i++)
		if (sodium_memcmp(cfg->peers[i].public_key, key, WIRE_KEY_LEN) == 0)
			return &cfg->peers[i];
	return NULL;
}

static void prefix_list(const struct config_peer *cp, char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < cp->n_allowed_ips && used + IP_PREFIX_STR_MAX + 4 < len; i++) {
		char one[IP_PREFIX_STR_MAX];
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? "," : "",
					 ip_prefix_format(&cp->allowed_ips[i], one, sizeof(one)));
	}
	if (used + IP_PREFIX_STR_MAX + 4 >= len)
		snprintf(buf + used, len - used, ",...");
}

static void endpoint_text(const struct config_peer *cp, char *buf, size_t len)
{
	if (!cp->has_endpoint)
		snprintf(buf, len, "none");
	else if (strchr(cp->endpoint_host, ':'))
		snprintf(buf, len, "[%.200s]:%u", cp->endpoint_host, cp->endpoint_port);
	else
		snprintf(buf, len, "%.200s:%u", cp->endpoint_host, cp->endpoint_port);
}

static bool psk_differs(const struct config_peer *a, const struct config_peer *b)
{
	return a->has_psk != b->has_psk || (a->has_psk && sodium_memcmp(a->psk, b->psk, WIRE_KEY_LEN) != 0);
}

static struct peer *add_peer(struct device *dev, const struct config_peer *cp, const char *what)
{
	char err[RELOAD_ERR_MAX];
	struct peer *p = device_peer_add(dev, cp);

	if (!p) {
		log_error("SIGHUP: out of memory adding peer %s; it is left out", cp->name);
		return NULL;
	}
	if (cp->has_endpoint && !device_peer_resolve_endpoint(dev, p, cp, err, sizeof(err)))
		log_warn("SIGHUP: %s; peer %s waits for it to connect", err, cp->name);
	log_info("SIGHUP: peer %s %s", cp->name, what);
	return p;
}

/* p (static) is in both files as old and cp: what changed is applied to it in place. */
static void update_peer(struct device *dev, struct peer *p, const struct config_peer *old, const struct config_peer *cp,
			uint64_t now_ms)
{
	char a[RELOAD_LIST_MAX], b[RELOAD_LIST_MAX], err[RELOAD_ERR_MAX];

	if (strcmp(old->name, cp->name) != 0) {
		if (peer_set_name(p, cp->name))
			log_info("SIGHUP: peer %s is now named %s", old->name, cp->name);
		else
			log_error("SIGHUP: out of memory renaming peer %s", old->name);
	}
	if (old->n_allowed_ips != cp->n_allowed_ips ||
	    memcmp(old->allowed_ips, cp->allowed_ips, cp->n_allowed_ips * sizeof(cp->allowed_ips[0])) != 0) {
		prefix_list(old, a, sizeof(a));
		prefix_list(cp, b, sizeof(b));
		if (peer_set_allowed_ips(dev, p, cp->allowed_ips, cp->n_allowed_ips))
			log_info("SIGHUP: peer %s: allowed_ips %s -> %s", p->name, a, b);
		else
			log_error("SIGHUP: peer %s: out of memory for its allowed_ips; it keeps %s", p->name, a);
	}
	if (old->has_endpoint != cp->has_endpoint || old->endpoint_port != cp->endpoint_port ||
	    strcmp(old->endpoint_host, cp->endpoint_host) != 0) {
		endpoint_text(old, a, sizeof(a));
		endpoint_text(cp, b, sizeof(b));
		if (!cp->has_endpoint) {
			log_info("SIGHUP: peer %s: endpoint %s -> none (it keeps the address it last used)", p->name, a);
		} else if (device_peer_resolve_endpoint(dev, p, cp, err, sizeof(err))) {
			log_info("SIGHUP: peer %s: endpoint %s -> %s", p->name, a, b);
		} else {
			log_warn("SIGHUP: %s; peer %s keeps its endpoint", err, p->name);
		}
	}
	if (old->persistent_keepalive_s != cp->persistent_keepalive_s) {
		log_info("SIGHUP: peer %s: persistent_keepalive %u -> %u s (0: off)", p->name,
			 old->persistent_keepalive_s, cp->persistent_keepalive_s);
		timers_set_persistent_keepalive(&p->timers, cp->persistent_keepalive_s * 1000u, now_ms);
	}
	device_peer_touch(dev, p);
}

static void apply_peers(struct device *dev, const struct config *run, const struct config *n, uint64_t now_ms)
{
	/* Gone from the file, or with a new preshared key: removed first, so their addresses
	 * are free for whoever owns them now. Backwards: removal moves the last peer here. */
	for (size_t i = dev->n_peers; i-- > 0;) {
		struct peer *p = dev->peers[i];
		if (p->from_coordinator || p->satellite)
			continue;
		const struct config_peer *cp = find_peer(n, p->public_key);
		const struct config_peer *old = find_peer(run, p->public_key);
		if (cp && !(old && psk_differs(old, cp)))
			continue;
		if (!cp)
			log_info("SIGHUP: peer %s removed", p->name);
		device_peer_remove(dev, p);
	}
	for (size_t i = 0; i < n->n_peers; i++) {
		const struct config_peer *cp = &n->peers[i];
		const struct config_peer *old = find_peer(run, cp->public_key);
		struct peer *p = peer_by_public_key(dev, cp->public_key);
		if (p && (p->from_coordinator || p->satellite)) {
			log_warn("SIGHUP: peer %s has the key of %s, a peer from the coordinator (or a satellite); "
				 "ignored", cp->name, p->name);
			continue;
		}
		if (!p)
			add_peer(dev, cp, old ? "replaced (preshared_key changed: a new handshake)" : "added");
		else if (old)
			update_peer(dev, p, old, cp, now_ms);
	}
}

void reload_config(struct device *dev, uint64_t now_ms)
{
	struct config n;
	char err[RELOAD_ERR_MAX];

	if (!dev->config_path || !dev->running_cfg)
		return;
	if (!config_load(&n, dev->config_path, err, sizeof(err))) {
		log_error("SIGHUP: %s; the running configuration stays", err);
		return;
	}
	/* As main's prepare_state_dir did at start, or an unchanged file would look changed. */
	if (!n.private_key_file[0] && n.state_dir[0])
		snprintf(n.private_key_file, sizeof(n.private_key_file), "%.*s/node.key",
			 (int)(sizeof(n.private_key_file) - sizeof("/node.key")), n.state_dir);
	for (size_t i = 0; i < n.n_peers; i++) {
		if (sodium_memcmp(n.peers[i].public_key, dev->identity.public_key, WIRE_KEY_LEN) == 0) {
			log_error("SIGHUP: %s: peer %s has this node's own public key; the running configuration stays",
				  dev->config_path, n.peers[i].name);
			config_free(&n);
			return;
		}
	}
	keep_restart_settings(&n, dev->running_cfg);
	apply_settings(dev, &n);
	apply_peers(dev, dev->running_cfg, &n, now_ms);
	meshroutes_reload(dev, &n, now_ms);
	publish_reload(dev, &n, now_ms);
	config_free(dev->running_cfg);
	*dev->running_cfg = n;
	device_initiate_ahead(dev, now_ms); /* new peers with an endpoint get a session at once */
	log_info("SIGHUP: configuration %s read again", dev->config_path);
}
