/* meshd status: the routes this node advertises (approved or pending), the exit node in
 * use, and what each peer offers and which of those routes are used (meshroutes.h). */
#include <inttypes.h>
#include <string.h>

#include "core/routes.h"
#include "meshd/device.h"
#include "meshd/meshroutes.h"
#include "meshd/peer.h"

static const char *approval(const struct meshroutes *mr, const struct control_route *r)
{
	if (!mr->have_approved)
		return "unknown";
	return route_list_has(&mr->approved, r) ? "approved" : "pending";
}

void meshroutes_status_text(const struct device *dev, struct ipc_text *out)
{
	const struct meshroutes *mr = dev->mroutes;
	char text[ROUTE_STR_MAX];

	if (!mr)
		return;
	if (mr->advertised.n) {
		ipc_text_printf(out, "  advertises");
		for (size_t i = 0; i < mr->advertised.n; i++)
			ipc_text_printf(out, "%s %s (%s)", i ? "," : "", route_format(&mr->advertised.list[i], text, sizeof(text)),
					approval(mr, &mr->advertised.list[i]));
		ipc_text_printf(out, "\n");
	}
	ipc_text_printf(out, "  exit node %s%s\n", mr->exit_status,
			mr->exit_node[0] && mr->exit_allow_lan ? " (LAN stays direct)" : "");
	if (mr->refused)
		ipc_text_printf(out, "  %" PRIu64 " offered route(s) ignored (collisions; see the log)\n", mr->refused);
}

void meshroutes_status_json(const struct device *dev, struct ipc_text *out)
{
	const struct meshroutes *mr = dev->mroutes;
	char text[ROUTE_STR_MAX];

	if (!mr) {
		ipc_text_printf(out, ", \"routes\": null");
		return;
	}
	ipc_text_printf(out, ", \"routes\": {\"advertised\": [");
	for (size_t i = 0; i < mr->advertised.n; i++)
		ipc_text_printf(out, "%s{\"prefix\": \"%s\", \"exit\": %s, \"state\": \"%s\"}", i ? ", " : "",
				route_format(&mr->advertised.list[i], text, sizeof(text)),
				route_is_exit(&mr->advertised.list[i]) ? "true" : "false", approval(mr, &mr->advertised.list[i]));
	ipc_text_printf(out, "], \"exit_node\": ");
	if (mr->exit_node[0])
		ipc_text_json_string(out, mr->exit_node, strlen(mr->exit_node));
	else
		ipc_text_printf(out, "null");
	ipc_text_printf(out, ", \"exit_node_in_use\": %s, \"exit_node_status\": ", mr->exit_peer ? "true" : "false");
	ipc_text_json_string(out, mr->exit_status, strlen(mr->exit_status));
	ipc_text_printf(out, ", \"exit_node_allow_lan\": %s, \"refused\": %" PRIu64 "}", mr->exit_allow_lan ? "true" : "false",
			mr->refused);
}

/* A host route inside the overlay's ranges (100.64.0.0/10, fc00::/7): the coordinator offers
 * those only for satellites behind the peer (meshroutes.c refuses any wider one). */
static bool satellite_route(const struct control_route *r)
{
	if (r->family == 4)
		return r->bits == 32 && r->addr[0] == 100 && (r->addr[1] & 0xc0) == 64;
	return r->bits == 128 && (r->addr[0] & 0xfe) == 0xfc;
}

/* The name of the satellite behind p that r leads to (PEER_SATELLITES), or NULL. */
static const char *satellite_name(const struct peer *p, const struct control_route *r)
{
	for (size_t i = 0; p->behind && i < p->behind->n; i++) {
		const struct control_peer_satellite *s = &p->behind->list[i];
		if (memcmp(r->addr, r->family == 4 ? s->ipv4 : s->ipv6, r->family == 4 ? 4 : 16) == 0)
			return s->name;
	}
	return NULL;
}

/* One line of p's offered routes of one kind (satellites or not), if it has any. */
static void routes_line(const struct peer *p, bool satellites, struct ipc_text *out)
{
	char text[ROUTE_STR_MAX];
	bool first = true;

	for (size_t i = 0; i < p->routes->offered.n; i++) {
		const struct control_route *r = &p->routes->offered.list[i];
		if (satellite_route(r) != satellites)
			continue;
		if (first)
			ipc_text_printf(out, "%-16s %s", "", satellites ? "satellites (via it)" : "routes");
		const char *name = satellites ? satellite_name(p, r) : NULL;
		ipc_text_printf(out, "%s %s%s%s (%s)", first ? "" : ",", name ? name : "", name ? " " : "",
				route_format(r, text, sizeof(text)), p->routes->used & (1u << i) ? "used" : "not used");
		first = false;
	}
	if (!first)
		ipc_text_printf(out, "\n");
}

void meshroutes_peer_text(const struct peer *p, struct ipc_text *out)
{
	if (!p->routes || p->routes->offered.n == 0)
		return;
	routes_line(p, false, out);
	routes_line(p, true, out);
}

void meshroutes_peer_json(const struct peer *p, struct ipc_text *out)
{
	char text[ROUTE_STR_MAX];

	ipc_text_printf(out, ", \"routes\": [");
	for (size_t i = 0; p->routes && i < p->routes->offered.n; i++) {
		const struct control_route *r = &p->routes->offered.list[i];
		bool sat = satellite_route(r);
		const char *name = sat ? satellite_name(p, r) : NULL;
		ipc_text_printf(out, "%s{\"prefix\": \"%s\", \"exit\": %s, \"satellite\": %s, \"satellite_name\": ",
				i ? ", " : "", route_format(r, text, sizeof(text)), route_is_exit(r) ? "true" : "false",
				sat ? "true" : "false");
		if (name)
			ipc_text_json_string(out, name, strlen(name));
		else
			ipc_text_printf(out, "null");
		ipc_text_printf(out, ", \"used\": %s}", p->routes->used & (1u << i) ? "true" : "false");
	}
	ipc_text_printf(out, "]");
}
