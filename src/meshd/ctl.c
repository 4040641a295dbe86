/* The control socket server (see ctl.h). Each client slot walks READING -> (PINGING or
 * CHECKING) -> WRITING -> FREE; every phase has a deadline, so a slot always comes back. */
#include "meshd/ctl.h"
#include "meshd/meshroutes.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/ipaddr.h"
#include "core/log.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/relayclient.h"
#include "meshd/status.h"

enum {
	CTL_LINE_MAX = 512, /* one answer line (ping, errors) */
	CTL_ADDR_MAX = 64,
};

/* ---------------------------------------------------------------- the socket */

void ctl_init(struct ctl *ctl)
{
	memset(ctl, 0, sizeof(*ctl));
	ctl->listen_fd = -1;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->clients[i].fd = -1;
}

static bool make_parent_dir(const char *path, char *err, size_t err_len)
{
	char dir[CONFIG_SOCKET_PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", path);
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return true; /* in "/" */
	*slash = '\0';
	if (mkdir(dir, CTL_DIR_MODE) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "cannot create the control socket's directory %s: %s", dir, strerror(errno));
		return false;
	}
	return true;
}

/* A socket file already there: another daemon answering (refuse), or left by one that died
 * (remove it). Anything that is not a socket is left alone. */
static bool clear_stale(const struct sockaddr_un *sun, char *err, size_t err_len)
{
	struct stat st;
	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? true : (snprintf(err, err_len, "cannot check control socket %s: %s",
							   sun->sun_path, strerror(errno)), false);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, err_len, "control socket path %s exists and is not a socket; remove it or set control_socket",
			 sun->sun_path);
		return false;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "cannot create a UNIX socket: %s", strerror(errno));
		return false;
	}
	int rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	int e = errno;
	close(fd);
	if (rc == 0) {
		snprintf(err, err_len, "another meshd is already running on control socket %s (same interface?); stop "
			 "it first, or give this one another interface or control_socket", sun->sun_path);
		return false;
	}
	if (e != ECONNREFUSED) {
		snprintf(err, err_len, "cannot check control socket %s: %s", sun->sun_path, strerror(e));
		return false;
	}
	if (unlink(sun->sun_path) < 0 && errno != ENOENT) {
		snprintf(err, err_len, "cannot remove stale control socket %s: %s", sun->sun_path, strerror(errno));
		return false;
	}
	log_info("removed stale control socket %s (left by a meshd that did not exit cleanly)", sun->sun_path);
	return true;
}

static bool set_group(const char *path, const char *group, char *err, size_t err_len)
{
	struct group *g = getgrnam(group);
	if (!g) {
		snprintf(err, err_len, "control_group '%s': no such group; create it (groupadd %s) or remove the key",
			 group, group);
		return false;
	}
	if (chown(path, (uid_t)-1, g->gr_gid) < 0 || chmod(path, CTL_SOCKET_GROUP_MODE) < 0) {
		snprintf(err, err_len, "cannot give control socket %s to group '%s': %s", path, group, strerror(errno));
		return false;
	}
	return true;
}

bool ctl_open(struct ctl *ctl, const struct config *cfg, char *err, size_t err_len)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	ctl_init(ctl);
	if (strlen(cfg->control_socket) >= sizeof(sun.sun_path)) {
		snprintf(err, err_len, "control socket path %s is too long", cfg->control_socket);
		return false;
	}
	memcpy(sun.sun_path, cfg->control_socket, strlen(cfg->control_socket) + 1);
	if (!make_parent_dir(sun.sun_path, err, err_len) || !clear_stale(&sun, err, err_len))
		return false;

	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0) {
		snprintf(err, err_len, "cannot create a UNIX socket: %s", strerror(errno));
		return false;
	}
	/* The socket file is born 0600: no window in which another user could connect. */
	mode_t old = umask(0777 & ~CTL_SOCKET_MODE);
	int rc = bind(ctl->listen_fd, (struct sockaddr *)&sun, sizeof(sun));
	int e = errno;
	umask(old);
	if (rc < 0) {
		snprintf(err, err_len, "cannot create control socket %s: %s", sun.sun_path, strerror(e));
		return false;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", sun.sun_path);
	struct stat st;
	if (stat(ctl->path, &st) == 0) {
		ctl->dev = st.st_dev;
		ctl->ino = st.st_ino;
	}
	if (cfg->control_group[0] && !set_group(ctl->path, cfg->control_group, err, err_len))
		return false;
	if (listen(ctl->listen_fd, CTL_BACKLOG) < 0) {
		snprintf(err, err_len, "cannot listen on control socket %s: %s", ctl->path, strerror(errno));
		return false;
	}
	return true;
}

bool ctl_attach(struct ctl *ctl, struct device *dev)
{
	dev->ctl = ctl;
	return device_watch_fd(dev, ctl->listen_fd, EPOLLIN);
}

static void client_free(struct ctl *ctl, struct ctl_client *c)
{
	if (c->phase == CTL_CHECKING)
		ctl->n_checking--;
	if (c->fd >= 0)
		close(c->fd); /* closing also takes it off the epoll set */
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->phase = CTL_FREE;
}

void ctl_close(struct ctl *ctl)
{
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->clients[i].fd >= 0)
			client_free(ctl, &ctl->clients[i]);
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	struct stat st;
	if (ctl->path[0] && stat(ctl->path, &st) == 0 && st.st_dev == ctl->dev && st.st_ino == ctl->ino)
		unlink(ctl->path);
	ctl_init(ctl);
}

bool ctl_owns_fd(const struct ctl *ctl, int fd)
{
	if (fd == ctl->listen_fd)
		return true;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->clients[i].fd == fd)
			return true;
	return false;
}

/* ---------------------------------------------------------------- answers */

static void set_phase(struct ctl *ctl, struct ctl_client *c, enum ctl_phase phase, uint64_t now_ms)
{
	if (c->phase == CTL_CHECKING)
		ctl->n_checking--;
	if (phase == CTL_CHECKING)
		ctl->n_checking++;
	c->phase = phase;
	c->phase_since_ms = now_ms;
}

/* Queues the answer and starts writing it. Takes the text (frees it). */
static void answer(struct device *dev, struct ctl_client *c, enum ipc_status status, struct ipc_text *body,
		   uint64_t now_ms)
{
	static const char overflow[] = "the answer is larger than the control protocol allows\n";
	const char *text = body->buf ? body->buf : "";
	size_t len = body->len;
	if (body->failed) {
		status = IPC_STATUS_ERROR;
		text = overflow;
		len = sizeof(overflow) - 1;
	}
	free(c->out);
	c->out = malloc(IPC_RESPONSE_HEADER_LEN + len);
	if (!c->out) {
		ipc_text_free(body);
		client_free(dev->ctl, c);
		return;
	}
	ipc_response_header_encode((uint16_t)status, (uint32_t)len, c->out);
	memcpy(c->out + IPC_RESPONSE_HEADER_LEN, text, len);
	c->out_len = IPC_RESPONSE_HEADER_LEN + len;
	c->out_off = 0;
	ipc_text_free(body);
	set_phase(dev->ctl, c, CTL_WRITING, now_ms);
	if (!device_watch_fd(dev, c->fd, EPOLLOUT))
		client_free(dev->ctl, c);
}

__attribute__((format(printf, 4, 5))) static void answer_line(struct device *dev, struct ctl_client *c,
							       enum ipc_status status, const char *fmt, ...)
{
	char line[CTL_LINE_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	struct ipc_text t;
	ipc_text_init(&t);
	ipc_text_printf(&t, "%s\n", line);
	answer(dev, c, status, &t, c->phase_since_ms);
}

/* ---------------------------------------------------------------- ping */

static struct peer *find_peer(struct device *dev, const char *arg)
{
	struct ip_prefix ip;
	if (!strchr(arg, '/') && ip_prefix_parse(arg, &ip))
		return peer_by_address(dev, ip.family, ip.addr);
	for (size_t i = 0; i < dev->n_peers; i++)
		if (!strcmp(dev->peers[i]->name, arg)) {
			device_peer_touch(dev, dev->peers[i]); /* the ping moves its path's timers */
			return dev->peers[i];
		}
	return NULL;
}

static void tick_ping(struct device *dev, struct ctl_client *c, uint64_t now_ms);

static void start_ping(struct device *dev, struct ctl_client *c, const char *arg, uint64_t now_ms)
{
	struct peer *p = find_peer(dev, arg);
	if (!p) {
		answer_line(dev, c, IPC_STATUS_ERROR, "no peer is named or has the address '%s' (see meshd status)", arg);
		return;
	}
	if (!p->from_coordinator) {
		answer_line(dev, c, IPC_STATUS_ERROR,
			    "%s is a static peer: meshd ping uses disco, which only coordinator peers speak; "
			    "meshd status shows its last handshake", p->name);
		return;
	}
	memcpy(c->ping_key, p->public_key, WIRE_KEY_LEN);
	set_phase(dev->ctl, c, CTL_PINGING, now_ms);
	size_t sent = probe_ping_all(dev, p, now_ms);
	device_outbox_flush(dev);
	if (sent == 0)
		tick_ping(dev, c, now_ms + CTL_PING_TIMEOUT_MS); /* no candidate: nothing to wait for */
}

/* A candidate that answered a ping sent since the request: the pong came back on it. */
static int ping_answered(const struct peer *p, uint64_t since_ms)
{
	for (size_t i = 0; i < p->path.n; i++) {
		const struct path_candidate *cand = &p->path.cand[i];
		if (cand->ping_sent_ms >= since_ms && !cand->ping_outstanding && cand->confirmed_ms >= cand->ping_sent_ms &&
		    cand->rtt_ms != PATH_RTT_UNKNOWN)
			return (int)i;
	}
	return -1;
}

static void tick_ping(struct device *dev, struct ctl_client *c, uint64_t now_ms)
{
	struct peer *p = peer_by_public_key(dev, c->ping_key);
	if (!p) {
		answer_line(dev, c, IPC_STATUS_ERROR, "the peer went away while pinging (the coordinator removed it)");
		return;
	}
	char ip[CTL_ADDR_MAX], via[CTL_ADDR_MAX];
	status_peer_address(p, ip, sizeof(ip));
	int i = ping_answered(p, c->phase_since_ms);
	if (i >= 0) {
		sockaddr_format(&p->path.cand[i].addr.sa, via, sizeof(via));
		uint32_t rtt = p->path.cand[i].rtt_ms;
		if (rtt == 0)
			answer_line(dev, c, IPC_STATUS_OK, "pong from %s (%s) via %s in <1 ms", p->name, ip, via);
		else
			answer_line(dev, c, IPC_STATUS_OK, "pong from %s (%s) via %s in %u ms", p->name, ip, via, rtt);
		return;
	}
	if (now_ms - c->phase_since_ms < CTL_PING_TIMEOUT_MS)
		return;
	const char *relay = !relayclient_available(dev, now_ms) ? NULL
			    : relayclient_udp_ok(dev, now_ms)   ? "the relay (over UDP)"
								 : "the relay (over TCP)";
	if (p->path.n == 0)
		answer_line(dev, c, IPC_STATUS_NEGATIVE, "no direct candidates known for %s (%s); %s%s", p->name, ip,
			    relay ? "traffic goes via " : "and no relay either: it is unreachable now",
			    relay ? relay : "");
	else
		answer_line(dev, c, IPC_STATUS_NEGATIVE, "no direct pong from %s (%s) within %d ms; %s%s", p->name, ip,
			    CTL_PING_TIMEOUT_MS, relay ? "traffic goes via " : "and no relay either: it is unreachable now",
			    relay ? relay : "");
}

/* ---------------------------------------------------------------- requests */

static void handle_request(struct device *dev, struct ctl_client *c, uint64_t now_ms)
{
	struct ipc_request req;
	size_t consumed;
	switch (ipc_request_decode(c->in, c->in_len, &req, &consumed)) {
	case IPC_DECODE_INCOMPLETE:
		if (c->in_len == sizeof(c->in))
			answer_line(dev, c, IPC_STATUS_ERROR, "request too long");
		return;
	case IPC_DECODE_BAD_MAGIC:
		client_free(dev->ctl, c); /* not a meshd CLI: nothing it would understand */
		return;
	case IPC_DECODE_VERSION: {
		/* The body names our package version so the CLI can say which binaries disagree. */
		struct ipc_text t;
		ipc_text_init(&t);
		ipc_text_printf(&t, "meshd %s", PACKAGE_VERSION);
		answer(dev, c, IPC_STATUS_VERSION, &t, now_ms);
		log_warn("control socket: a client of control protocol %u (we speak %d) was refused; use the meshd "
			 "binary that matches the daemon", req.version, IPC_VERSION);
		return;
	}
	case IPC_DECODE_MALFORMED:
		answer_line(dev, c, IPC_STATUS_ERROR, "malformed request");
		return;
	case IPC_DECODE_OK:
		break;
	}
	c->json = req.flags & IPC_FLAG_JSON;
	switch (req.command) {
	case IPC_CMD_STATUS: {
		struct ipc_text t;
		ipc_text_init(&t);
		status_render(dev, now_ms, c->json, &t);
		answer(dev, c, IPC_STATUS_OK, &t, now_ms);
		return;
	}
	case IPC_CMD_PING:
		if (req.arg_len == 0)
			answer_line(dev, c, IPC_STATUS_ERROR, "ping needs a peer name or address");
		else
			start_ping(dev, c, req.arg, now_ms);
		return;
	case IPC_CMD_NETCHECK:
		set_phase(dev->ctl, c, CTL_CHECKING, now_ms);
		netcheck_start(dev, &c->nc, now_ms);
		return;
	case IPC_CMD_SET_EXIT_NODE: {
		char err[128];
		const char *name = req.arg_len == 0 || !strcmp(req.arg, "none") ? "" : req.arg;
		if (!meshroutes_set_exit(dev, name, err, sizeof(err))) {
			answer_line(dev, c, IPC_STATUS_ERROR, "%s", err);
			return;
		}
		struct ipc_text t;
		ipc_text_init(&t);
		ipc_text_printf(&t, "exit node %s\n", dev->mroutes->exit_status);
		answer(dev, c, IPC_STATUS_OK, &t, now_ms);
		return;
	}
	default:
		answer_line(dev, c, IPC_STATUS_ERROR, "unknown command %u", req.command);
		return;
	}
}

static void on_readable(struct device *dev, struct ctl_client *c, uint64_t now_ms)
{
	if (c->phase != CTL_READING) {
		/* A client that closes early (Ctrl-C during ping) shows as readable: check for EOF. */
		char b;
		ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			client_free(dev->ctl, c);
		else if (n > 0)
			client_free(dev->ctl, c); /* more than one request: not how the CLI speaks */
		return;
	}
	ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		client_free(dev->ctl, c);
		return;
	}
	c->in_len += (size_t)n;
	handle_request(dev, c, now_ms);
	/* Waiting for a pong or STUN: the socket stays watched for the client hanging up. */
}

static void on_writable(struct device *dev, struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			break;
		c->out_off += (size_t)n;
	}
	client_free(dev->ctl, c); /* answered (or the client is gone) */
}

static void on_accept(struct device *dev, uint64_t now_ms)
{
	struct ctl *ctl = dev->ctl;
	for (;;) {
		int fd = accept4(ctl->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				log_warn("control socket: accept failed: %s", strerror(errno));
			return;
		}
		struct ctl_client *c = NULL;
		for (size_t i = 0; i < CTL_MAX_CLIENTS && !c; i++)
			if (ctl->clients[i].fd < 0)
				c = &ctl->clients[i];
		if (!c) {
			/* Full: say so in one small write (it fits any socket buffer) and hang up. */
			static const char busy[] = "meshd is busy with other control clients; try again\n";
			uint8_t msg[IPC_RESPONSE_HEADER_LEN + sizeof(busy) - 1];
			ipc_response_header_encode(IPC_STATUS_ERROR, sizeof(busy) - 1, msg);
			memcpy(msg + IPC_RESPONSE_HEADER_LEN, busy, sizeof(busy) - 1);
			(void)send(fd, msg, sizeof(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		set_phase(ctl, c, CTL_READING, now_ms);
		if (!device_watch_fd(dev, fd, EPOLLIN))
			client_free(ctl, c);
	}
}

void ctl_on_io(struct device *dev, int fd, uint32_t events, uint64_t now_ms)
{
	struct ctl *ctl = dev->ctl;
	if (fd == ctl->listen_fd) {
		on_accept(dev, now_ms);
		return;
	}
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->clients[i];
		if (c->fd != fd)
			continue;
		if (c->phase == CTL_WRITING && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			on_writable(dev, c);
		else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
			on_readable(dev, c, now_ms);
		return;
	}
}

void ctl_tick(struct device *dev, uint64_t now_ms)
{
	struct ctl *ctl = dev->ctl;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->clients[i];
		switch (c->phase) {
		case CTL_FREE:
			break;
		case CTL_READING:
			if (now_ms - c->phase_since_ms >= CTL_READ_TIMEOUT_MS)
				client_free(ctl, c);
			break;
		case CTL_PINGING:
			tick_ping(dev, c, now_ms);
			break;
		case CTL_CHECKING:
			if (netcheck_tick(dev, &c->nc, now_ms)) {
				struct ipc_text t;
				ipc_text_init(&t);
				netcheck_render(&c->nc, c->json, &t);
				answer(dev, c, IPC_STATUS_OK, &t, now_ms);
			}
			break;
		case CTL_WRITING:
			if (now_ms - c->phase_since_ms >= CTL_WRITE_TIMEOUT_MS)
				client_free(ctl, c);
			break;
		}
	}
}

uint64_t ctl_next_deadline(const struct device *dev)
{
	const struct ctl *ctl = dev->ctl;
	uint64_t next = UINT64_MAX;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++) {
		const struct ctl_client *c = &ctl->clients[i];
		uint64_t d = UINT64_MAX;
		if (c->phase == CTL_READING)
			d = c->phase_since_ms + CTL_READ_TIMEOUT_MS;
		else if (c->phase == CTL_WRITING)
			d = c->phase_since_ms + CTL_WRITE_TIMEOUT_MS;
		else if (c->phase == CTL_PINGING)
			d = c->phase_since_ms + CTL_PING_TIMEOUT_MS; /* pongs arrive as I/O; ticks follow */
		else if (c->phase == CTL_CHECKING)
			d = netcheck_next_deadline(&c->nc);
		if (d < next)
			next = d;
	}
	return next;
}

bool ctl_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from)
{
	struct ctl *ctl = dev->ctl;
	if (ctl->n_checking == 0)
		return false;
	for (size_t i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->clients[i].phase == CTL_CHECKING && netcheck_on_datagram(&ctl->clients[i].nc, buf, len, from))
			return true;
	return false;
}
