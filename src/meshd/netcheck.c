/* netcheck: STUN to the coordinator's two ports from the data socket (see netcheck.h). */
#include "meshd/netcheck.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

#include "core/clock.h"
#include "core/ipaddr.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/relayclient.h"

enum {
	NETCHECK_ADDR_MAX = 64, /* "[v6]:port" */
};

static void send_request(struct device *dev, struct netcheck_probe *pr, uint64_t now_ms)
{
	uint8_t req[STUN_HEADER_LEN];
	size_t len = stun_build_request(pr->txid, req, sizeof(req));
	socklen_t alen = pr->server.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	pr->last_sent_ms = now_ms;
	pr->sent_us = clock_monotonic_us();
	/* A failed send (no route) is the same as a lost datagram: the timeout says "no UDP". */
	if (len && dev->udp_fd >= 0)
		(void)sendto(dev->udp_fd, req, len, MSG_DONTWAIT, (struct sockaddr *)&pr->server, alen);
}

void netcheck_start(struct device *dev, struct netcheck *nc, uint64_t now_ms)
{
	memset(nc, 0, sizeof(*nc));
	nc->running = true;
	nc->started_ms = now_ms;
	nc->coordinator_known = dev->coord != NULL;
	if (!dev->coord)
		return;
	nc->coordinator_ready = coordclient_ready(dev);
	nc->have_info = dev->relay.have_info;
	nc->relay_udp_ok = relayclient_udp_ok(dev, now_ms);
	if (!nc->have_info)
		return;
	nc->probe[NETCHECK_MAIN].asked = true;
	nc->probe[NETCHECK_MAIN].server = dev->relay.addr;
	if (dev->relay.have_alt_stun) {
		nc->probe[NETCHECK_ALT].asked = true;
		nc->probe[NETCHECK_ALT].server = dev->relay.alt_stun_addr;
	}
	for (int i = 0; i < NETCHECK_SERVERS; i++) {
		if (!nc->probe[i].asked)
			continue;
		randombytes_buf(nc->probe[i].txid, sizeof(nc->probe[i].txid));
		send_request(dev, &nc->probe[i], now_ms);
	}
}

bool netcheck_on_datagram(struct netcheck *nc, const uint8_t *buf, size_t len, const struct sockaddr_storage *from)
{
	if (!nc->running || !stun_is_message(buf, len))
		return false;
	for (int i = 0; i < NETCHECK_SERVERS; i++) {
		struct netcheck_probe *pr = &nc->probe[i];
		struct sockaddr_storage mapped;
		if (!pr->asked || pr->answered || !sockaddr_equal(from, &pr->server) ||
		    !stun_parse_response(buf, len, pr->txid, &mapped))
			continue;
		pr->answered = true;
		pr->mapped = mapped;
		pr->rtt_us = clock_monotonic_us() - pr->sent_us;
		return true;
	}
	return false;
}

static bool all_answered(const struct netcheck *nc)
{
	for (int i = 0; i < NETCHECK_SERVERS; i++)
		if (nc->probe[i].asked && !nc->probe[i].answered)
			return false;
	return true;
}

bool netcheck_tick(struct device *dev, struct netcheck *nc, uint64_t now_ms)
{
	if (!nc->running)
		return false;
	if (all_answered(nc) || now_ms - nc->started_ms >= NETCHECK_TIMEOUT_MS)
		return true;
	for (int i = 0; i < NETCHECK_SERVERS; i++) {
		struct netcheck_probe *pr = &nc->probe[i];
		if (pr->asked && !pr->answered && now_ms - pr->last_sent_ms >= NETCHECK_RETRY_MS)
			send_request(dev, pr, now_ms);
	}
	return false;
}

uint64_t netcheck_next_deadline(const struct netcheck *nc)
{
	if (!nc->running)
		return UINT64_MAX;
	uint64_t next = nc->started_ms + NETCHECK_TIMEOUT_MS;
	for (int i = 0; i < NETCHECK_SERVERS; i++) {
		const struct netcheck_probe *pr = &nc->probe[i];
		if (pr->asked && !pr->answered && pr->last_sent_ms + NETCHECK_RETRY_MS < next)
			next = pr->last_sent_ms + NETCHECK_RETRY_MS;
	}
	return next;
}

/* ---------------------------------------------------------------- the verdict */

enum nat_kind { NAT_UNKNOWN, NAT_EASY, NAT_HARD, NAT_NO_UDP };

static const char *const nat_names[] = {
	[NAT_UNKNOWN] = "unknown", [NAT_EASY] = "easy", [NAT_HARD] = "hard", [NAT_NO_UDP] = "no-udp",
};

struct verdict {
	bool udp;
	int varies; /* 1 yes, 0 no, -1 unknown */
	enum nat_kind nat;
	const char *words;
};

static struct verdict judge(const struct netcheck *nc)
{
	const struct netcheck_probe *m = &nc->probe[NETCHECK_MAIN], *a = &nc->probe[NETCHECK_ALT];
	struct verdict v = { .udp = m->answered || a->answered || nc->relay_udp_ok, .varies = -1 };

	if (!nc->coordinator_known) {
		v.words = "unknown: no coordinator configured (netcheck asks the coordinator's STUN ports)";
	} else if (!nc->have_info && !nc->coordinator_ready) {
		v.words = "unknown: not connected to the coordinator yet (it names its STUN ports on connect)";
	} else if (!nc->have_info) {
		v.words = "unknown: the coordinator did not name its STUN and relay ports (no RELAY_INFO: an older meshcoord?)";
	} else if (!v.udp) {
		v.nat = NAT_NO_UDP;
		v.words = "no UDP: everything is relayed over TCP";
	} else if (m->answered && a->answered) {
		v.varies = !sockaddr_equal(&m->mapped, &a->mapped);
		v.nat = v.varies ? NAT_HARD : NAT_EASY;
		v.words = v.varies ? "mapping varies by destination (hard/symmetric NAT): direct paths need the peer to be easy"
				   : "endpoint-independent mapping (easy NAT)";
	} else if (!a->asked) {
		v.words = "unknown: UDP works, but the coordinator has no second STUN port to compare with";
	} else {
		v.words = "unknown: UDP works, but only one of the two STUN ports answered";
	}
	return v;
}

static void addr_or_null(struct ipc_text *t, bool json, bool have, const struct sockaddr_storage *sa)
{
	char buf[NETCHECK_ADDR_MAX];
	if (!have) {
		ipc_text_printf(t, json ? "null" : "-");
		return;
	}
	sockaddr_format((const struct sockaddr *)sa, buf, sizeof(buf));
	if (json)
		ipc_text_json_string(t, buf, strlen(buf));
	else
		ipc_text_printf(t, "%s", buf);
}

static void ms_or_null(struct ipc_text *t, bool json, bool have, uint64_t us)
{
	if (!have)
		ipc_text_printf(t, json ? "null" : "-");
	else
		ipc_text_printf(t, json ? "%.3f" : "%.1f ms", (double)us / 1000.0);
}

void netcheck_render(const struct netcheck *nc, bool json, struct ipc_text *t)
{
	const struct netcheck_probe *m = &nc->probe[NETCHECK_MAIN];
	struct verdict v = judge(nc);

	if (json) {
		ipc_text_printf(t, "{\"coordinator\": \"%s\", \"udp\": %s, \"relay_udp\": %s, \"stun\": [",
				!nc->coordinator_known ? "none" : nc->coordinator_ready ? "connected" : "disconnected",
				v.udp ? "true" : "false", nc->relay_udp_ok ? "true" : "false");
		bool first = true;
		for (int i = 0; i < NETCHECK_SERVERS; i++) {
			const struct netcheck_probe *pr = &nc->probe[i];
			if (!pr->asked)
				continue;
			ipc_text_printf(t, "%s{\"server\": ", first ? "" : ", ");
			addr_or_null(t, true, true, &pr->server);
			ipc_text_printf(t, ", \"mapped\": ");
			addr_or_null(t, true, pr->answered, &pr->mapped);
			ipc_text_printf(t, ", \"rtt_ms\": ");
			ms_or_null(t, true, pr->answered, pr->rtt_us);
			ipc_text_printf(t, "}");
			first = false;
		}
		ipc_text_printf(t, "], \"reflexive_address\": ");
		addr_or_null(t, true, m->answered, &m->mapped);
		ipc_text_printf(t, ", \"mapping_varies_by_destination\": %s, \"nat_type\": \"%s\", \"nat\": ",
				v.varies < 0 ? "null" : v.varies ? "true" : "false", nat_names[v.nat]);
		ipc_text_json_string(t, v.words, strlen(v.words));
		ipc_text_printf(t, ", \"coordinator_latency_ms\": ");
		ms_or_null(t, true, m->answered, m->rtt_us);
		ipc_text_printf(t, "}\n");
		return;
	}
	ipc_text_printf(t, "coordinator:          %s\n",
			!nc->coordinator_known ? "none configured" : nc->coordinator_ready ? "connected" : "not connected");
	ipc_text_printf(t, "UDP:                  %s\n",
			!v.udp ? "no" : m->answered ? (nc->relay_udp_ok ? "yes (STUN answered, relay over UDP)" : "yes (STUN answered)")
				    : "yes (relay BIND acknowledged)");
	ipc_text_printf(t, "reflexive address:    ");
	addr_or_null(t, false, m->answered, &m->mapped);
	ipc_text_printf(t, "\nmapping varies:       %s", v.varies < 0 ? "unknown" : v.varies ? "yes" : "no");
	if (v.varies >= 0) {
		ipc_text_printf(t, " (");
		addr_or_null(t, false, true, &m->mapped);
		ipc_text_printf(t, " toward one STUN port, ");
		addr_or_null(t, false, true, &nc->probe[NETCHECK_ALT].mapped);
		ipc_text_printf(t, " toward the other)");
	}
	ipc_text_printf(t, "\nNAT type:             %s\n", v.words);
	ipc_text_printf(t, "coordinator latency:  ");
	ms_or_null(t, false, m->answered, m->rtt_us);
	ipc_text_printf(t, "%s\n", m->answered ? " (STUN round trip)" : "");
}
