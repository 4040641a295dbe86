/* The node's event loop: one epoll over TUN, the UDP socket and a signalfd, with the
 * earliest peer timer as the wait timeout. */
#include "meshd/device.h"

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

enum {
	DEVICE_SOCKET_BUFFER_BYTES = 4 << 20, /* room for bursts at multi-Gbit/s between loop turns */
	DEVICE_EPOLL_EVENTS = 8,
	/* Batches taken from one fd per wake-up before the other gets a turn (epoll is
	 * level-triggered, so what is left wakes us again): keeps TUN and socket fair. */
	DEVICE_MAX_BATCHES_PER_WAKE = 4,
};

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
}

/* ---------------------------------------------------------------- buffers and peers */

static bool alloc_buffers(struct device *dev)
{
	size_t datagram = dev->mtu + DEVICE_DATAGRAM_OVERHEAD;
	if (datagram < WIRE_INITIATION_LEN)
		datagram = WIRE_INITIATION_LEN;
	/* Receive slots take one byte more than we accept so that an oversized datagram is
	 * seen as such (MSG_TRUNC) rather than silently cut. */
	dev->inbox.slot_size = (datagram > RELAY_MAX_FRAME ? datagram : RELAY_MAX_FRAME) + 1;
	/* A GRO receive holds many datagrams: the pages are touched only when it does. */
	if (dev->udp_gro && dev->inbox.slot_size < UDPOFFLOAD_GRO_BUFFER + 1)
		dev->inbox.slot_size = UDPOFFLOAD_GRO_BUFFER + 1;
	dev->outbox.slot_size = DEVICE_SLOT_HEADROOM + datagram;
	dev->outbox.payload_room = datagram;
	dev->plain_slot_size = dev->mtu + WIRE_DATA_PADDING;
	dev->inbox.buffers = calloc(DEVICE_BATCH, dev->inbox.slot_size);
	dev->outbox.buffers = calloc(DEVICE_BATCH, dev->outbox.slot_size);
	dev->plain_buffers = calloc(DEVICE_BATCH, dev->plain_slot_size);
	if (!dev->inbox.buffers || !dev->outbox.buffers || !dev->plain_buffers ||
	    !stage_pool_init(&dev->stage, dev->plain_slot_size))
		return false;

	for (unsigned int i = 0; i < DEVICE_BATCH; i++) {
		dev->inbox.iov[i].iov_base = dev->inbox.buffers + (size_t)i * dev->inbox.slot_size;
		dev->inbox.iov[i].iov_len = dev->inbox.slot_size;
		dev->inbox.msgs[i].msg_hdr.msg_iov = &dev->inbox.iov[i];
		dev->inbox.msgs[i].msg_hdr.msg_iovlen = 1;
		dev->inbox.msgs[i].msg_hdr.msg_name = &dev->inbox.source[i];
		dev->outbox.msgs[i].msg_hdr.msg_iov = &dev->outbox.iov[i];
		dev->outbox.msgs[i].msg_hdr.msg_iovlen = 1;
		dev->outbox.msgs[i].msg_hdr.msg_name = &dev->outbox.dest[i];
	}
	return true;
}

/* Converts an address to the socket's family (IPv4 becomes v4-mapped IPv6 on a
 * dual-stack socket) so that endpoints compare equal to recvmmsg's source addresses. */
bool device_socket_address(const struct device *dev, const struct sockaddr *sa, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == dev->udp_family) {
		memcpy(out, sa, sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
		return true;
	}
	if (sa->sa_family == AF_INET && dev->udp_family == AF_INET6) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = in->sin_port;
		in6->sin6_addr.s6_addr[10] = 0xff;
		in6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&in6->sin6_addr.s6_addr[12], &in->sin_addr, 4);
		return true;
	}
	return false; /* an IPv6 endpoint but IPv6 is not available here */
}

static bool resolve_endpoint(struct device *dev, struct peer *p, const struct config_peer *cp, char *err,
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
		if (resolve && cfg->peers[i].has_endpoint && !resolve_endpoint(dev, p, &cfg->peers[i], err, err_len))
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

static bool open_udp_socket(struct device *dev, uint16_t port, char *err, size_t err_len)
{
	int zero = 0, bufsize = DEVICE_SOCKET_BUFFER_BYTES;

	dev->udp_family = AF_INET6;
	dev->udp_fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (dev->udp_fd >= 0) {
		struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_any };
		setsockopt(dev->udp_fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
		if (bind(dev->udp_fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0)
			goto bind_failed;
	} else {
		dev->udp_family = AF_INET; /* IPv6 disabled on this host */
		dev->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (dev->udp_fd < 0) {
			snprintf(err, err_len, "cannot create a UDP socket: %s", strerror(errno));
			return false;
		}
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
		if (bind(dev->udp_fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
			goto bind_failed;
	}
	struct sockaddr_storage bound;
	socklen_t bound_len = sizeof(bound);
	if (getsockname(dev->udp_fd, (struct sockaddr *)&bound, &bound_len) == 0)
		dev->listen_port = ntohs(bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
								      : ((struct sockaddr_in6 *)&bound)->sin6_port);
	/* Best effort: the kernel caps these at net.core.{r,w}mem_max. */
	setsockopt(dev->udp_fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	setsockopt(dev->udp_fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	udpoffload_probe(dev->udp_fd, &dev->udp_gso, &dev->udp_gro);
	log_info("UDP offloads: GSO %s, GRO %s", dev->udp_gso ? "on" : "off (kernel refused)",
		 dev->udp_gro ? "on" : "off (kernel refused)");
	return true;

bind_failed:
	snprintf(err, err_len, "cannot listen on UDP port %u: %s; pick another listen_port or stop the other program",
		 port, strerror(errno));
	return false;
}

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

	if (!open_udp_socket(dev, cfg->listen_port, err, err_len))
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
	coordclient_close(dev);
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
	device_reset(dev);
}

/* ---------------------------------------------------------------- UDP batches */

/* Sends msgs[0..count) of one mmsghdr array; n_of(i) datagrams ride in message i.
 * Returns the index of a message that failed with an error GSO may cause, or count. */
static unsigned int send_batch(struct device *dev, struct mmsghdr *msgs, unsigned int count, const unsigned int *n_of)
{
	unsigned int sent = 0;
	while (sent < count) {
		int n = sendmmsg(dev->udp_fd, msgs + sent, count - sent, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EIO: the device cannot checksum for us; EINVAL or EMSGSIZE: the kernel
			 * will not segment it (old kernel, or datagrams larger than the path's MTU,
			 * which only IP fragmentation, never GSO, gets through). */
			if (n_of && n_of[sent] > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE))
				return sent;
			/* A full socket buffer or an unreachable peer: drop this message, keep the rest. */
			dev->counters.tx_dropped += n_of ? n_of[sent] : 1;
			n = 1;
		} else {
			for (int k = 0; k < n; k++)
				dev->counters.tx_datagrams += n_of ? n_of[sent + (unsigned int)k] : 1;
		}
		sent += (unsigned int)n;
	}
	return count;
}

/* Groups the outbox into GSO messages and sends them; on a refusal, GSO is off from
 * then on and the rest goes one datagram per message. */
static void flush_gso(struct device *dev)
{
	struct udp_outbox *ob = &dev->outbox;
	unsigned int m = 0;
	for (unsigned int i = 0; i < ob->count; m++) {
		unsigned int n = (unsigned int)udpoffload_group(ob->iov, ob->dest, ob->count, i);
		ob->gso_msgs[m].msg_hdr = ob->msgs[i].msg_hdr;
		ob->gso_msgs[m].msg_hdr.msg_iov = &ob->iov[i];
		ob->gso_msgs[m].msg_hdr.msg_iovlen = n;
		if (n > 1) {
			udpoffload_set_segment(&ob->gso_msgs[m].msg_hdr, ob->gso_control[m], (uint16_t)ob->iov[i].iov_len);
			dev->counters.tx_gso_sends++;
		}
		ob->gso_first[m] = i;
		ob->gso_n[m] = n;
		i += n;
	}
	unsigned int failed = send_batch(dev, ob->gso_msgs, m, ob->gso_n);
	if (failed == m)
		return;
	log_warn("UDP GSO refused on send (%s); sending one datagram per message from now on", strerror(errno));
	dev->udp_gso = false;
	unsigned int first = ob->gso_first[failed];
	send_batch(dev, ob->msgs + first, ob->count - first, NULL);
}

void device_outbox_flush(struct device *dev)
{
	if (dev->udp_fd < 0 || dev->outbox.count == 0) {
		dev->outbox.count = 0; /* offline device (fuzzing): drop */
		return;
	}
	if (dev->udp_gso)
		flush_gso(dev);
	else
		send_batch(dev, dev->outbox.msgs, dev->outbox.count, NULL);
	dev->outbox.count = 0;
}

uint8_t *device_outbox_slot(struct device *dev)
{
	if (dev->outbox.count == DEVICE_BATCH)
		device_outbox_flush(dev);
	return dev->outbox.buffers + (size_t)dev->outbox.count * dev->outbox.slot_size + DEVICE_SLOT_HEADROOM;
}

static void commit_at(struct device *dev, size_t offset, size_t len, const struct sockaddr_storage *dest)
{
	unsigned int i = dev->outbox.count++;
	dev->outbox.iov[i].iov_base = dev->outbox.buffers + (size_t)i * dev->outbox.slot_size + offset;
	dev->outbox.iov[i].iov_len = len;
	dev->outbox.dest[i] = *dest;
	dev->outbox.msgs[i].msg_hdr.msg_namelen =
		dest->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

void device_outbox_commit(struct device *dev, size_t len, const struct sockaddr_storage *dest)
{
	commit_at(dev, DEVICE_SLOT_HEADROOM, len, dest);
}

void device_outbox_commit_frame(struct device *dev, size_t len, const struct sockaddr_storage *dest)
{
	commit_at(dev, 0, len, dest);
}

/* Returns false when the socket is drained. */
static bool rx_from_socket(struct device *dev, uint64_t now_ms)
{
	for (unsigned int i = 0; i < DEVICE_BATCH; i++) {
		dev->inbox.msgs[i].msg_hdr.msg_namelen = sizeof(dev->inbox.source[i]);
		dev->inbox.msgs[i].msg_hdr.msg_flags = 0;
		if (dev->udp_gro) {
			dev->inbox.msgs[i].msg_hdr.msg_control = dev->inbox.control[i];
			dev->inbox.msgs[i].msg_hdr.msg_controllen = sizeof(dev->inbox.control[i]);
		}
	}
	int n = recvmmsg(dev->udp_fd, dev->inbox.msgs, DEVICE_BATCH, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("receiving on the UDP socket failed: %s", strerror(errno));
		return false;
	}
	for (int i = 0; i < n; i++) {
		struct msghdr *h = &dev->inbox.msgs[i].msg_hdr;
		if (h->msg_flags & MSG_TRUNC || dev->inbox.msgs[i].msg_len >= dev->inbox.slot_size) {
			dev->counters.rx_datagrams++;
			dev->counters.rx_invalid_size++;
			continue;
		}
		uint8_t *buf = dev->inbox.iov[i].iov_base;
		size_t len = dev->inbox.msgs[i].msg_len;
		size_t seg = dev->udp_gro ? udpoffload_gro_size(h) : 0;
		if (seg == 0 || seg >= len) {
			rx_datagram(dev, buf, len, &dev->inbox.source[i], now_ms);
			continue;
		}
		/* GRO: datagrams of seg bytes back to back, the last one maybe shorter. */
		dev->counters.rx_gro_receives++;
		for (size_t off = 0; off < len; off += seg)
			rx_datagram(dev, buf + off, len - off < seg ? len - off : seg, &dev->inbox.source[i], now_ms);
	}
	rx_flush_tun(dev);
	return n == DEVICE_BATCH;
}

/* ---------------------------------------------------------------- timers and loop */

/* The earliest moment anything of p's may be due: its timers (core/timers.c), its path's
 * probing (path.c) and a birthday punch (punch.c); UINT64_MAX for none. */
static uint64_t peer_deadline(const struct device *dev, const struct peer *p, uint64_t now_ms)
{
	uint64_t next = timers_next_deadline(&p->timers);
	if (p->from_coordinator) {
		if (probe_report_pending(dev, p, now_ms))
			return now_ms;
		uint64_t d = path_next_deadline(&p->path, now_ms, peer_session_usable(p, now_ms));
		if (d < next)
			next = d;
		d = punch_next_deadline(p, now_ms);
		if (d < next)
			next = d;
	}
	return next;
}

static void reschedule(struct device *dev, struct peer *p, uint64_t now_ms)
{
	p->due_ms = peer_deadline(dev, p, now_ms);
	if (!timerq_update(&dev->timerq, p))
		log_warn("peer %s: out of memory rescheduling its timers", p->name);
}

/* Every peer marked since the last call gets its deadline recomputed. */
static void reschedule_touched(struct device *dev, uint64_t now_ms)
{
	size_t n;
	struct peer **touched = timerq_take_touched(&dev->timerq, &n);
	for (size_t i = 0; i < n; i++)
		reschedule(dev, touched[i], now_ms);
}

static void run_peer_timers(struct device *dev, struct peer *p, uint64_t now_ms)
{
	unsigned int actions = timers_expire(&p->timers, now_ms);
	if (actions & TIMER_ACTION_GIVE_UP) {
		char ep[64] = "no endpoint";
		if (p->has_endpoint)
			sockaddr_format(&p->endpoint.sa, ep, sizeof(ep));
		unsigned int dropped = peer_drop_staged(dev, p);
		log_warn("peer %s: giving up on the handshake with %s after %d s; dropping %u queued packets",
			 p->name, ep, TIMER_REKEY_ATTEMPT_TIME_MS / 1000, dropped);
		dev->counters.tx_dropped += dropped;
		peer_handshake_end(p);
	}
	if (actions & TIMER_ACTION_SEND_INITIATION) {
		/* a peer that sent a cookie has our initiation (and its key is right): it is busy */
		if (peer_initiation_in_flight(p) && !p->no_response_warned && p->has_endpoint &&
		    !peer_cookie_fresh(p, now_ms)) {
			char ep[64], ours[KEY_BASE64_LEN + 1];
			sockaddr_format(&p->endpoint.sa, ep, sizeof(ep));
			key_to_base64(ours, dev->identity.public_key);
			log_warn("peer %s: no handshake response from %s after %d s; check that the public key "
				 "configured for it is right and that it has our public key %s",
				 p->name, ep, TIMER_REKEY_TIMEOUT_MS / 1000, ours);
			p->no_response_warned = true;
		}
		tx_send_initiation(dev, p, now_ms, peer_initiation_in_flight(p));
	}
	if (actions & TIMER_ACTION_SEND_KEEPALIVE)
		tx_send_keepalive(dev, p, now_ms);
	if (actions & TIMER_ACTION_WIPE_KEYS) {
		log_info("peer %s: no new session for %d s; keys wiped", p->name, TIMER_ZERO_KEYS_AFTER_MS / 1000);
		peer_wipe_keys(p);
		peer_purge_indices(dev, p, false);
	}
	if (p->from_coordinator)
		probe_tick(dev, p, now_ms);
	if (p->punch)
		punch_tick(dev, p, now_ms);
}

void device_run_timers(struct device *dev, uint64_t now_ms)
{
	size_t n;
	/* The relay coming or going changes every coordinator peer's path (probe_tick reports
	 * it): rare, so a pass over the peers then is fine. */
	bool relay = dev->coord && relayclient_available(dev, now_ms);
	if (relay != dev->relay_was_available) {
		dev->relay_was_available = relay;
		for (size_t i = 0; i < dev->n_peers; i++)
			if (dev->peers[i]->from_coordinator)
				device_peer_touch(dev, dev->peers[i]);
	}
	reschedule_touched(dev, now_ms);
	/* Each due peer is acted on once per turn, as the scan over every peer did; what its
	 * actions make due again at once runs on the next turn (the loop does not sleep then). */
	struct peer **due = timerq_take_due(&dev->timerq, now_ms, &n);
	for (size_t i = 0; i < n; i++)
		run_peer_timers(dev, due[i], now_ms);
	for (size_t i = 0; i < n; i++)
		reschedule(dev, due[i], now_ms);
	reschedule_touched(dev, now_ms);
	if (dev->coord)
		relayclient_tick(dev, now_ms);
}

static int next_timeout_ms(struct device *dev, uint64_t now_ms)
{
	reschedule_touched(dev, now_ms);
	struct peer *first = timerq_first(&dev->timerq);
	uint64_t next = first ? first->due_ms : UINT64_MAX;
	if (dev->coord) {
		uint64_t d = coordclient_next_deadline(dev);
		if (d < next)
			next = d;
		d = relayclient_next_deadline(dev);
		if (d < next)
			next = d;
	}
	if (dev->ctl) {
		uint64_t d = ctl_next_deadline(dev);
		if (d < next)
			next = d;
	}
	if (next == UINT64_MAX)
		return -1;
	if (next <= now_ms)
		return 0;
	return next - now_ms > INT32_MAX ? INT32_MAX : (int)(next - now_ms);
}

static void handle_signals(struct device *dev)
{
	struct signalfd_siginfo si;
	while (read(dev->signal_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			device_log_counters(dev);
		} else {
			log_info("signal %u received, shutting down", si.ssi_signo);
			dev->stop_requested = true;
		}
	}
}

void device_initiate_ahead(struct device *dev, uint64_t now_ms)
{
	size_t started = 0;

	for (size_t i = 0; i < dev->n_peers && started < DEVICE_INITIATE_AHEAD_MAX; i++) {
		struct peer *p = dev->peers[i];
		if (peer_session_usable(p, now_ms) || peer_initiation_in_flight(p))
			continue;
		tx_send_initiation(dev, p, now_ms, false);
		started++;
	}
}

int device_run(struct device *dev)
{
	uint64_t now_ms = clock_monotonic_ms();

	log_info("interface %s up, listening on UDP port %u, %zu peers", dev->ifname, dev->listen_port,
		 dev->n_peers);
	device_initiate_ahead(dev, now_ms);
	device_outbox_flush(dev);

	while (!dev->stop_requested) {
		struct epoll_event events[DEVICE_EPOLL_EVENTS];
		int n = epoll_wait(dev->epoll_fd, events, DEVICE_EPOLL_EVENTS, next_timeout_ms(dev, now_ms));
		if (n < 0 && errno != EINTR) {
			log_error("epoll_wait failed: %s", strerror(errno));
			return -1;
		}
		now_ms = clock_monotonic_ms();
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == dev->signal_fd) {
				handle_signals(dev);
			} else if (fd == dev->udp_fd) {
				for (int b = 0; b < DEVICE_MAX_BATCHES_PER_WAKE && rx_from_socket(dev, now_ms); b++)
					device_outbox_flush(dev);
			} else if (fd == dev->tun_fd) {
				for (int b = 0; b < DEVICE_MAX_BATCHES_PER_WAKE && tx_from_tun(dev, now_ms); b++)
					device_outbox_flush(dev);
			} else if (fd == coordclient_fd(dev)) {
				coordclient_on_io(dev, events[i].events, now_ms);
			} else if (dev->ctl && ctl_owns_fd(dev->ctl, fd)) {
				ctl_on_io(dev, fd, events[i].events, now_ms);
			} else {
				/* A birthday punch's socket: rare (hard NATs), so a scan is fine. */
				for (size_t k = 0; k < dev->n_peers; k++)
					if (dev->peers[k]->punch_fd == fd) {
						device_peer_touch(dev, dev->peers[k]);
						punch_on_readable(dev, dev->peers[k], now_ms);
					}
			}
			rx_flush_tun(dev); /* what the relay or a punch socket delivered */
			device_outbox_flush(dev);
		}
		if (dev->coord)
			coordclient_tick(dev, now_ms);
		device_run_timers(dev, now_ms);
		rx_flush_tun(dev); /* what a birthday punch's socket delivered */
		device_outbox_flush(dev);
		if (dev->ctl)
			ctl_tick(dev, now_ms);
	}
	return 0;
}

void device_log_counters(const struct device *dev)
{
	char line[1024];
	size_t used = 0;
#define DEVICE_COUNTER_PRINT(name)                                                                   \
	if (used < sizeof(line))                                                                     \
		used += (size_t)snprintf(line + used, sizeof(line) - used, " %s=%" PRIu64, #name,    \
					 dev->counters.name);
	DEVICE_COUNTERS(DEVICE_COUNTER_PRINT)
#undef DEVICE_COUNTER_PRINT
	log_info("counters:%s", line);
}
