/* The event loop one thread runs: one epoll over TUN, the UDP socket, a signalfd, the
 * coordinator connection and the control socket, with the earliest timer (the peer timer
 * heap, coordinator and control deadlines) as the wait timeout. Each wake-up takes batches
 * from the ready fds in turn, then runs the timers that are due. (One loop, one thread:
 * contrib/bench/experiments/two-workers.patch measured a second sealing thread slower on
 * the 2-vCPU machine.) */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/keys.h"
#include "core/sdnotify.h"
#include "meshd/coordclient.h"
#include "meshd/ctl.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"
#include "meshd/peer.h"
#include "meshd/probe.h"
#include "meshd/publish.h"
#include "meshd/punch.h"
#include "meshd/reload.h"
#include "meshd/relayclient.h"
#include "meshd/rx.h"
#include "meshd/socket.h"
#include "meshd/tx.h"

enum {
	LOOP_EPOLL_EVENTS = 8,
	/* Batches taken from one fd per wake-up before the other gets a turn (epoll is
	 * level-triggered, so what is left wakes us again): keeps TUN and socket fair. */
	LOOP_MAX_BATCHES_PER_WAKE = 4,
};

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
	dnsfwd_tick(dev, now_ms);
	publish_tick(dev, now_ms);
	device_log_suppressed(dev, now_ms);
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
	uint64_t d = sdnotify_watchdog_deadline();
	if (d < next)
		next = d;
	d = publish_next_deadline(dev); /* a published stream's connect or idle timeout */
	if (d < next)
		next = d;
	d = dnsfwd_next_deadline(dev); /* a forwarded DNS query's timeout */
	if (d < next)
		next = d;
	d = device_log_next_deadline(dev); /* a held-back log summary */
	if (d < next)
		next = d;
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
		} else if (si.ssi_signo == SIGHUP) {
			reload_config(dev, clock_monotonic_ms());
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

/* systemd's READY=1 (core/sdnotify.h) once the node is usable: its interface is up
 * (device_open) and, with a coordinator, it has its addresses and a peer map, restored from
 * state at start or from its first registration. A first join waits for the coordinator. */
static void notify_ready(struct device *dev)
{
	if (dev->ready_notified)
		return;
	const char *name = coordclient_node_name(dev);
	if (dev->coord && !name)
		return;
	dev->ready_notified = true;
	if (name)
		sdnotify_send("READY=1\nSTATUS=%s up as %s", dev->ifname, name);
	else
		sdnotify_send("READY=1\nSTATUS=%s up, static peers: %zu", dev->ifname, dev->n_peers);
}

int device_run(struct device *dev)
{
	uint64_t now_ms = clock_monotonic_ms();

	log_info("interface %s up, listening on UDP port %u, %zu peers", dev->ifname, dev->listen_port,
		 dev->n_peers);
	device_initiate_ahead(dev, now_ms);
	device_outbox_flush(dev);
	if (dev->coord && !coordclient_node_name(dev))
		sdnotify_send("STATUS=%s up, registering with the coordinator", dev->ifname);
	notify_ready(dev);

	while (!dev->stop_requested) {
		struct epoll_event events[LOOP_EPOLL_EVENTS];
		int n = epoll_wait(dev->epoll_fd, events, LOOP_EPOLL_EVENTS, next_timeout_ms(dev, now_ms));
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
				for (int b = 0; b < LOOP_MAX_BATCHES_PER_WAKE && socket_receive_batch(dev, now_ms); b++)
					device_outbox_flush(dev);
			} else if (fd == dev->tun_fd) {
				for (int b = 0; b < LOOP_MAX_BATCHES_PER_WAKE && tx_from_tun(dev, now_ms); b++)
					device_outbox_flush(dev);
			} else if (fd == coordclient_fd(dev)) {
				coordclient_on_io(dev, events[i].events, now_ms);
			} else if (dev->ctl && ctl_owns_fd(dev->ctl, fd)) {
				ctl_on_io(dev, fd, events[i].events, now_ms);
			} else if (publish_owns_fd(dev, fd)) {
				publish_on_io(dev, fd, events[i].events, now_ms); /* a published stream */
			} else if (dnsfwd_owns_fd(dev, fd)) {
				dnsfwd_on_readable(dev, fd, now_ms); /* an upstream's DNS answer */
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
		if (dev->coord) {
			coordclient_tick(dev, now_ms);
			notify_ready(dev);
		}
		sdnotify_watchdog_tick(now_ms);
		device_run_timers(dev, now_ms);
		rx_flush_tun(dev); /* what a birthday punch's socket delivered */
		device_outbox_flush(dev);
		if (dev->ctl)
			ctl_tick(dev, now_ms);
	}
	sdnotify_send("STOPPING=1\nSTATUS=stopping");
	return 0;
}

