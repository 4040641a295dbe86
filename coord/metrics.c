/* The metrics page: Prometheus text exposition format 0.0.4 (# HELP, # TYPE, one sample per
 * line; counters end in _total). Every server counter is exported; the ones the operator
 * asks about most (joins, refusals, relay, STUN, control frames) are grouped into labelled
 * families, and their raw counters are then not repeated. Gauges come from the live tables. */
#include <inttypes.h>
#include <string.h>

#include "coord/server_internal.h"

#define METRICS_PREFIX "meshcoord_"

/* Raw counters that a labelled family below already carries. */
static const char *const grouped[] = {
	"nodes_created",       "registrations_refused", "relay_udp_frames", "relay_tcp_frames",
	"relay_rx_udp_frames", "relay_rx_tcp_frames",   "relay_bytes",      "relay_rx_bytes",
	"stun_requests",       "stun_alt_requests",     "control_frames_received", "control_frames_sent",
};

/* The registry's refusal reasons as label values (db_register_result). */
static const char *const refusal_reasons[DB_REGISTER_ERROR + 1] = {
	[DB_REGISTER_KEY_UNKNOWN] = "join_key_unknown", [DB_REGISTER_KEY_EXPIRED] = "join_key_expired",
	[DB_REGISTER_KEY_REVOKED] = "join_key_revoked", [DB_REGISTER_KEY_USED] = "join_key_used",
	[DB_REGISTER_KEY_USED_UP] = "join_key_used_up", [DB_REGISTER_KEY_BUSY] = "join_key_busy",
	[DB_REGISTER_NODE_REMOVED] = "node_removed",    [DB_REGISTER_NEED_KEY] = "need_join_key",
};

static bool is_grouped(const char *name)
{
	for (size_t i = 0; i < sizeof(grouped) / sizeof(grouped[0]); i++)
		if (strcmp(grouped[i], name) == 0)
			return true;
	return false;
}

/* "# HELP" and "# TYPE"; the format wants '\' and newlines in help escaped. */
static void family(struct ipc_text *t, const char *name, const char *suffix, const char *type, const char *help)
{
	ipc_text_printf(t, "# HELP " METRICS_PREFIX "%s%s ", name, suffix);
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			ipc_text_printf(t, "\\\\");
		else if (*p == '\n')
			ipc_text_printf(t, "\\n");
		else
			ipc_text_printf(t, "%c", *p);
	}
	ipc_text_printf(t, "\n# TYPE " METRICS_PREFIX "%s%s %s\n", name, suffix, type);
}

static void gauge(struct ipc_text *t, const char *name, const char *help, uint64_t v)
{
	family(t, name, "", "gauge", help);
	ipc_text_printf(t, METRICS_PREFIX "%s %" PRIu64 "\n", name, v);
}

static void counter(struct ipc_text *t, const char *name, const char *help, uint64_t v)
{
	family(t, name, "_total", "counter", help);
	ipc_text_printf(t, METRICS_PREFIX "%s_total %" PRIu64 "\n", name, v);
}

/* One sample of a labelled counter family (its HELP and TYPE already written). */
static void sample(struct ipc_text *t, const char *name, const char *labels, uint64_t v)
{
	ipc_text_printf(t, METRICS_PREFIX "%s_total{%s} %" PRIu64 "\n", name, labels, v);
}

static void render_grouped(const struct coord_server *s, struct ipc_text *t)
{
	const struct server_counters *c = &s->counters;

	counter(t, "joins", "Nodes that joined: registered for the first time with a join key", c->nodes_created);

	family(t, "registrations_refused", "_total", "counter", "REGISTER refused, by reason");
	for (size_t r = 0; r < sizeof(refusal_reasons) / sizeof(refusal_reasons[0]); r++) {
		char label[64];
		if (!refusal_reasons[r])
			continue;
		snprintf(label, sizeof(label), "reason=\"%s\"", refusal_reasons[r]);
		sample(t, "registrations_refused", label, s->refused_by[r]);
	}

	family(t, "relay_packets", "_total", "counter",
	       "Relay frames: received from a node to forward, or forwarded to a node; by transport");
	sample(t, "relay_packets", "direction=\"received\",transport=\"udp\"", c->relay_rx_udp_frames);
	sample(t, "relay_packets", "direction=\"received\",transport=\"tcp\"", c->relay_rx_tcp_frames);
	sample(t, "relay_packets", "direction=\"forwarded\",transport=\"udp\"", c->relay_udp_frames);
	sample(t, "relay_packets", "direction=\"forwarded\",transport=\"tcp\"", c->relay_tcp_frames);

	family(t, "relay_bytes", "_total", "counter",
	       "Relayed payload bytes: received from nodes to forward, or forwarded to nodes");
	sample(t, "relay_bytes", "direction=\"received\"", c->relay_rx_bytes);
	sample(t, "relay_bytes", "direction=\"forwarded\"", c->relay_bytes);

	family(t, "stun_answers", "_total", "counter", "STUN Binding requests answered, by port");
	sample(t, "stun_answers", "port=\"main\"", c->stun_requests - c->stun_alt_requests);
	sample(t, "stun_answers", "port=\"alternate\"", c->stun_alt_requests);

	family(t, "control_frames", "_total", "counter",
	       "Control channel frames: authenticated ones received from nodes, sealed ones sent");
	sample(t, "control_frames", "direction=\"received\"", c->control_frames_received);
	sample(t, "control_frames", "direction=\"sent\"", c->control_frames_sent);
}

/* Published services (publish.h): what is open, its clients, its bytes. */
static void render_publish(const struct coord_server *s, struct ipc_text *t)
{
	const struct pub_state *p = &s->pub;
	uint64_t services = 0, active = 0, up = p->bytes_up, down = p->bytes_down;

	for (const struct pub_service *v = p->services; v; v = v->next) {
		services++;
		active += v->active;
		for (const struct pub_stream *st = v->streams; st; st = st->next) {
			up += st->sp.bytes_up;
			down += st->sp.bytes_down;
		}
	}
	gauge(t, "publish_services", "Published services listening on the public address", services);
	gauge(t, "publish_connections", "Live client connections (TCP) and flows (UDP) of published services", active);
	counter(t, "publish_streams", "Client connections and flows accepted on published ports", p->streams_opened);
	family(t, "publish_streams_closed", "_total", "counter", "Published streams closed early, by reason");
	sample(t, "publish_streams_closed", "reason=\"limit\"", p->streams_refused_limit);
	sample(t, "publish_streams_closed", "reason=\"node_busy\"", p->streams_refused_busy);
	sample(t, "publish_streams_closed", "reason=\"attach_timeout\"", p->streams_attach_timeouts);
	sample(t, "publish_streams_closed", "reason=\"idle\"", p->streams_idle_timeouts);
	sample(t, "publish_streams_closed", "reason=\"failed\"", p->streams_failed);
	counter(t, "publish_work_unknown", "Work connections naming no waiting stream: closed", p->work_unknown);
	family(t, "publish_bytes", "_total", "counter",
	       "Bytes of published streams: from clients to nodes (in), from nodes to clients (out)");
	sample(t, "publish_bytes", "direction=\"in\"", up);
	sample(t, "publish_bytes", "direction=\"out\"", down);
}

void metrics_render(const struct coord_server *s, struct ipc_text *t)
{
	gauge(t, "nodes_registered", "Nodes in the registry (removed ones excluded)", s->nodes.count);
	gauge(t, "nodes_online", "Nodes with a live registered session", s->active_list.count);
	gauge(t, "connections", "Open control connections, registered or not", s->n_conns);
	gauge(t, "tombstones", "Removed nodes whose removal some session has yet to be told", nodemap_tomb_count(&s->nodes));
	uint64_t sats = 0;
	for (const struct node_entry *e = s->nodes.head; e; e = e->next)
		if (!e->removed && e->sats)
			sats += e->sats->cur.list.n;
	gauge(t, "satellites", "Satellites (stock WireGuard devices) served by gateway nodes", sats);
	render_grouped(s, t);
	render_publish(s, t);
#define METRICS_COUNTER(name, help)                                \
	if (!is_grouped(#name))                                    \
		counter(t, #name, help, s->counters.name);
	SERVER_COUNTERS(METRICS_COUNTER)
#undef METRICS_COUNTER
}
