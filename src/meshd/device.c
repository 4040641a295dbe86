/* The node's lifecycle: opening the TUN interface, the socket (socket.c) and the event loop's
 * epoll (loop.c runs it), configuring addresses and routes, adding and removing peers, and
 * closing it all down. */
#include "meshd/publish.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"
#include "meshd/meshroutes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/keys.h"
#include "meshd/coordclient.h"
#include "meshd/ctl.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/punch.h"
#include "meshd/rx.h"
#include "meshd/tun.h"
#include "meshd/tx.h"

static void device_reset(struct device *dev)
{
	memset(dev, 0, sizeof(*dev));
	dev->tun_fd = -1;
	dev->udp_fd = -1;
	dev->epoll_fd = -1;
	dev->signal_fd = -1;
	dev->rx_punch_fd = -1;
	allowedips_init(&dev->routes);
	index_table_init(&dev->indices);
	key_table_init(&dev->keys);
	timerq_init(&dev->timerq);
	acl_init(&dev->acl);
}

/* ---------------------------------------------------------------- buffers and peers */

static bool alloc_buffers(struct device *dev)
{
	dev->plain_slot_size = dev->mtu + WIRE_DATA_PADDING;
	dev->plain_buffers = calloc(DEVICE_BATCH, dev->plain_slot_size);
	return dev->plain_buffers && socket_alloc_buffers(dev) && stage_pool_init(&dev->stage, dev->plain_slot_size);
}

bool device_peer_resolve_endpoint(struct device *dev, struct peer *p, const struct config_peer *cp, char *err,
				  size_t err_len)
{
	char port[8];
	snprintf(port, sizeof(port), "%u", cp->endpoint_port);
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	int rc = getaddrinfo(cp->endpoint_host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_len, "peer %s: cannot resolve endpoint '%s': %s", cp->name, cp->endpoint_host,
			 gai_strerror(rc));
		return false;
	}
	bool ok = false;
	struct sockaddr_storage addr;
	for (struct addrinfo *ai = res; ai && !ok; ai = ai->ai_next)
		ok = device_socket_address(dev, ai->ai_addr, &addr);
	freeaddrinfo(res);
	if (ok)
		sockaddr_inet_set(&p->endpoint, &addr);
	if (!ok) {
		snprintf(err, err_len, "peer %s: endpoint '%s' has no address usable from this host (IPv6 disabled?)",
			 cp->name, cp->endpoint_host);
		return false;
	}
	p->has_endpoint = true;
	return true;
}

struct peer *device_peer_add(struct device *dev, const struct config_peer *cp)
{
	if (dev->n_peers == dev->peers_cap) {
		size_t cap = dev->peers_cap ? dev->peers_cap * 2 : 16;
		struct peer **grown = realloc(dev->peers, cap * sizeof(*grown));
		if (!grown)
			return NULL;
		dev->peers = grown;
		dev->peers_cap = cap;
	}
	struct peer *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (!peer_init(p, cp) || !key_table_add(&dev->keys, p)) {
		peer_free(p);
		free(p);
		return NULL;
	}
	if (!peer_set_allowed_ips(dev, p, cp->allowed_ips, cp->n_allowed_ips)) {
		key_table_remove(&dev->keys, p);
		peer_free(p);
		free(p);
		return NULL;
	}
	dev->peers[dev->n_peers++] = p;
	device_peer_touch(dev, p);
	return p;
}

/* Takes p out of every table, so nothing finds it any more, and frees it. */
static void peer_destroy(struct device *dev, struct peer *p)
{
	timerq_remove(&dev->timerq, p);
	key_table_remove(&dev->keys, p);
	peer_purge_indices(dev, p, true);
	peer_unroute(dev, p);
	peer_drop_staged(dev, p);
	if (dev->rx_punch_peer == p)
		dev->rx_punch_peer = NULL;
	punch_free(dev, p);
	peer_free(p);
	free(p);
}

void device_peer_remove(struct device *dev, struct peer *p)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		if (dev->peers[i] != p)
			continue;
		dev->peers[i] = dev->peers[--dev->n_peers];
		peer_destroy(dev, p);
		return;
	}
}

void device_peer_touch(struct device *dev, struct peer *p)
{
	if (!timerq_touch(&dev->timerq, p))
		log_warn("peer %s: out of memory rescheduling its timers", p->name);
}

static bool setup_peers(struct device *dev, const struct config *cfg, bool resolve, char *err, size_t err_len)
{
	for (size_t i = 0; i < cfg->n_peers; i++) {
		if (sodium_memcmp(cfg->peers[i].public_key, dev->identity.public_key, WIRE_KEY_LEN) == 0) {
			snprintf(err, err_len, "peer %s has this node's own public key; remove it from peers",
				 cfg->peers[i].name);
			return false;
		}
		struct peer *p = device_peer_add(dev, &cfg->peers[i]);
		if (!p) {
			snprintf(err, err_len, "out of memory for peer %s", cfg->peers[i].name);
			return false;
		}
		if (resolve && cfg->peers[i].has_endpoint && !device_peer_resolve_endpoint(dev, p, &cfg->peers[i], err, err_len))
			return false;
	}
	return true;
}

static bool device_init_common(struct device *dev, const struct config *cfg, const uint8_t private_key[WIRE_KEY_LEN],
			       bool resolve, char *err, size_t err_len)
{
	if (!handshake_identity_init(&dev->identity, private_key)) {
		snprintf(err, err_len, "the private key is not a usable X25519 key; make a new one with 'meshd genkey'");
		return false;
	}
	cookie_checker_init(&dev->cookies, dev->identity.public_key, cfg->cookie_threshold);
	dev->max_peers = cfg->max_peers ? cfg->max_peers : CONFIG_DEFAULT_MAX_PEERS;
	if (!srclimit_init(&dev->handshake_limit, DEVICE_HANDSHAKE_SOURCES, DEVICE_HANDSHAKES_PER_SOURCE_PER_S,
			   DEVICE_HANDSHAKE_BURST_PER_SOURCE)) {
		snprintf(err, err_len, "out of memory for the handshake rate table");
		return false;
	}
	if (!srclimit_init(&dev->probe_limit, DEVICE_PROBE_DESTINATIONS, DEVICE_PROBES_PER_DESTINATION_PER_S,
			   DEVICE_PROBE_BURST_PER_DESTINATION)) {
		snprintf(err, err_len, "out of memory for the probe rate table");
		return false;
	}
	dev->mtu = cfg->mtu;
	snprintf(dev->ifname, sizeof(dev->ifname), "%s", cfg->interface);
	if (!alloc_buffers(dev)) {
		snprintf(err, err_len, "out of memory for packet buffers");
		return false;
	}
	return setup_peers(dev, cfg, resolve, err, err_len);
}

bool device_open_offline(struct device *dev, const struct config *cfg, const uint8_t private_key[WIRE_KEY_LEN],
			 char *err, size_t err_len)
{
	device_reset(dev);
	dev->udp_family = AF_INET6;
	return device_init_common(dev, cfg, private_key, false, err, err_len);
}

/* ---------------------------------------------------------------- interface and socket */

static bool configure_interface(struct device *dev, const struct config *cfg, char *err, size_t err_len)
{
	int rc = netlink_open(&dev->nl);
	if (rc < 0) {
		snprintf(err, err_len, "cannot open rtnetlink: %s", strerror(-rc));
		return false;
	}
	dev->netlink_open = true;

	const char *step = "look up";
	rc = dev->ifindex = netlink_link_index(&dev->nl, dev->ifname);
	if (rc >= 0) {
		step = "set the MTU of";
		rc = netlink_set_mtu(&dev->nl, dev->ifindex, dev->mtu);
	}
	for (size_t i = 0; rc >= 0 && i < cfg->n_addresses; i++) {
		step = "add an address to";
		rc = netlink_add_address(&dev->nl, dev->ifindex, &cfg->addresses[i]);
	}
	if (rc >= 0) {
		step = "bring up";
		rc = netlink_set_up(&dev->nl, dev->ifindex);
	}
	/* Routes for what peers own beyond our own subnet (the kernel routes that already). */
	for (size_t i = 0; rc >= 0 && i < dev->n_peers; i++)
		for (size_t j = 0; rc >= 0 && j < dev->peers[i]->n_allowed_ips; j++) {
			step = "add a peer route to";
			rc = netlink_add_route(&dev->nl, dev->ifindex, &dev->peers[i]->allowed_ips[j]);
		}
	if (rc < 0) {
		snprintf(err, err_len, "cannot %s interface %s: %s", step, dev->ifname, strerror(-rc));
		return false;
	}
	return true;
}

static bool epoll_add(struct device *dev, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
	return epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool device_watch_fd(struct device *dev, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.fd = fd };
	if (dev->epoll_fd < 0)
		return false;
	if (events == 0)
		return epoll_ctl(dev->epoll_fd, EPOLL_CTL_DEL, fd, NULL) == 0;
	if (epoll_ctl(dev->epoll_fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return true;
	return errno == ENOENT && epoll_ctl(dev->epoll_fd, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool device_add_address(struct device *dev, const struct ip_prefix *addr, char *err, size_t err_len)
{
	char buf[IP_PREFIX_STR_MAX];
	int rc = dev->netlink_open ? netlink_add_address(&dev->nl, dev->ifindex, addr) : 0;
	if (rc < 0)
		snprintf(err, err_len, "cannot add address %s to %s: %s", ip_prefix_format(addr, buf, sizeof(buf)),
			 dev->ifname, strerror(-rc));
	return rc >= 0;
}

bool device_open(struct device *dev, const struct config *cfg, const uint8_t private_key[WIRE_KEY_LEN], char *err,
		 size_t err_len)
{
	device_reset(dev);

	if (!socket_open(dev, cfg->listen_port, err, err_len))
		return false;
	if (!device_init_common(dev, cfg, private_key, true, err, err_len))
		return false;

	dev->tun_fd = tun_open(dev->ifname, true, &dev->tun_features);
	if (dev->tun_fd < 0) {
		int e = -dev->tun_fd;
		if (e == ENOENT)
			snprintf(err, err_len, "cannot open /dev/net/tun: %s; load the tun module (modprobe tun)",
				 strerror(e));
		else if (e == EPERM || e == EACCES)
			snprintf(err, err_len, "cannot create interface %s: %s; run as root or with CAP_NET_ADMIN",
				 dev->ifname, strerror(e));
		else
			snprintf(err, err_len, "cannot create interface %s: %s", dev->ifname, strerror(e));
		return false;
	}
	if (!configure_interface(dev, cfg, err, err_len))
		return false;
	if (dev->tun_features & TUN_FEATURE_VNET_HDR) {
		dev->tun_read_buf = malloc(DEVICE_TUN_READ_MAX);
		if (!dev->tun_read_buf) {
			snprintf(err, err_len, "out of memory for the TUN read buffer");
			return false;
		}
	}
	log_info("TUN offloads: %s%s%s", dev->tun_features & TUN_FEATURE_TSO ? "TSO " : "",
		 dev->tun_features & TUN_FEATURE_USO ? "USO " : "",
		 dev->tun_features & TUN_FEATURE_VNET_HDR ? "and coalescing" : "none (the kernel refused them)");

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	dev->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	dev->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (dev->signal_fd < 0 || dev->epoll_fd < 0 || !epoll_add(dev, dev->tun_fd) || !epoll_add(dev, dev->udp_fd) ||
	    !epoll_add(dev, dev->signal_fd)) {
		snprintf(err, err_len, "cannot set up the event loop: %s", strerror(errno));
		return false;
	}
	return true;
}

void device_close(struct device *dev)
{
	dnsd_close(dev); /* resolved's settings reverted while the interface still exists */
	publish_close(dev); /* its streams' sockets, before the coordinator's */
	coordclient_close(dev);
	meshroutes_close(dev); /* before the link goes: its routes, rules and nftables table */
	if (dev->netlink_open) {
		if (dev->ifindex > 0)
			netlink_delete_link(&dev->nl, dev->ifindex); /* closing the fd would too; be explicit */
		netlink_close(&dev->nl);
	}
	int fds[] = { dev->tun_fd, dev->udp_fd, dev->epoll_fd, dev->signal_fd };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (size_t i = 0; i < dev->n_peers; i++)
		peer_destroy(dev, dev->peers[i]);
	free(dev->peers);
	allowedips_free(&dev->routes);
	index_table_free(&dev->indices);
	key_table_free(&dev->keys);
	timerq_free(&dev->timerq);
	stage_pool_free(&dev->stage);
	if (dev->plain_buffers)
		sodium_memzero(dev->plain_buffers, DEVICE_BATCH * dev->plain_slot_size);
	free(dev->plain_buffers);
	if (dev->tun_read_buf)
		sodium_memzero(dev->tun_read_buf, DEVICE_TUN_READ_MAX);
	free(dev->tun_read_buf);
	free(dev->inbox.buffers);
	free(dev->outbox.buffers);
	handshake_identity_clear(&dev->identity);
	cookie_checker_clear(&dev->cookies);
	srclimit_free(&dev->handshake_limit);
	srclimit_free(&dev->probe_limit);
	acl_free(&dev->acl);
	device_reset(dev);
}

const char *device_log_kind_what(enum device_log_kind kind)
{
	static const char *const what[DEVICE_LOG_KIND_N] = {
#define DEVICE_LOG_KIND_WHAT(name, text) [DEVICE_LOG_##name] = text,
		DEVICE_LOG_KINDS(DEVICE_LOG_KIND_WHAT)
#undef DEVICE_LOG_KIND_WHAT
	};
	return (unsigned int)kind < DEVICE_LOG_KIND_N ? what[kind] : "messages";
}

void device_log_suppressed(struct device *dev, uint64_t now_ms)
{
	for (unsigned int k = 0; k < DEVICE_LOG_KIND_N; k++) {
		unsigned int n = log_ratelimit_expire(&dev->log_limits[k], now_ms);
		if (n)
			log_warn("(%u more %s in %d s were not logged)", n, device_log_kind_what((enum device_log_kind)k),
				 LOG_RATELIMIT_INTERVAL_MS / 1000);
	}
}

uint64_t device_log_next_deadline(const struct device *dev)
{
	uint64_t next = UINT64_MAX;
	for (unsigned int k = 0; k < DEVICE_LOG_KIND_N; k++) {
		uint64_t d = log_ratelimit_deadline(&dev->log_limits[k]);
		if (d < next)
			next = d;
	}
	return next;
}

void device_log_counters(const struct device *dev)
{
	char line[LOG_LINE_MAX];
	size_t used = 0;
#define DEVICE_COUNTER_PRINT(name)                                                                   \
	if (used < sizeof(line))                                                                     \
		used += (size_t)snprintf(line + used, sizeof(line) - used, " %s=%" PRIu64, #name,    \
					 dev->counters.name);
	DEVICE_COUNTERS(DEVICE_COUNTER_PRINT)
#undef DEVICE_COUNTER_PRINT
	log_info("counters:%s", line);
	dnsd_log_counters(dev);
}
