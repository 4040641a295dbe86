/* meshroutes.h: subnet routes and exit nodes on the node. */
#include "meshd/meshroutes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/routes.h"
#include "meshd/coordclient.h"
#include "meshd/coordclient_internal.h"
#include "meshd/device.h"
#include "meshd/peer.h"

/* ---------------------------------------------------------------- helpers */

static struct meshroutes *mr_of(const struct device *dev)
{
	return dev->mroutes;
}

static bool overlay_routes(const struct device *dev, struct control_route *v4, struct control_route *v6)
{
	const struct coordclient *cc = dev->coord;

	if (!cc || !cc->state.registered)
		return false;
	struct ip_prefix p4 = cc->state.pinned ? cc->state.pin_ipv4 : ip_prefix_network(&cc->state.ipv4);
	struct ip_prefix p6 = cc->state.pinned ? cc->state.pin_ipv6 : ip_prefix_network(&cc->state.ipv6);
	return route_from_prefix(&p4, v4) && route_from_prefix(&p6, v6);
}

void meshroutes_mark_socket(int fd)
{
	unsigned int mark = MESHROUTES_FWMARK;

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0)
		log_debug("cannot mark socket %d for the exit node's policy routing: %s", fd, strerror(errno));
}

/* ---------------------------------------------------------------- exit policy rules */

static void exit_rules_change(struct device *dev, struct meshroutes *mr, bool add)
{
	static const int families[] = { AF_INET, AF_INET6 };

	if (!dev->netlink_open)
		return;
	for (size_t i = 0; i < 2; i++) {
		int fam = families[i];
		struct netlink_rule lan = { .family = fam, .priority = MESHROUTES_RULE_LAN_PRIO, .table = RT_TABLE_MAIN,
					    .suppress_prefixlen0 = true };
		struct netlink_rule exit = { .family = fam, .priority = MESHROUTES_RULE_EXIT_PRIO,
					     .table = MESHROUTES_TABLE, .fwmark = MESHROUTES_FWMARK, .invert = true };
		struct ip_prefix def = { .family = fam, .bits = 0 };
		int err;

		if (!add) {
			/* a crash may have left them: delete whatever is there, ours by priority */
			netlink_rule_change(&dev->nl, false, &lan);
			netlink_rule_change(&dev->nl, false, &exit);
			if (dev->ifindex > 0)
				netlink_route_change(&dev->nl, false, dev->ifindex, &def, MESHROUTES_TABLE);
			continue;
		}
		err = netlink_route_change(&dev->nl, true, dev->ifindex, &def, MESHROUTES_TABLE);
		if (!err && mr->exit_allow_lan)
			err = netlink_rule_change(&dev->nl, true, &lan);
		if (!err)
			err = netlink_rule_change(&dev->nl, true, &exit);
		if (err)
			log_warn("exit node: cannot set up policy routing (%s): %s", fam == AF_INET ? "IPv4" : "IPv6",
				 strerror(-err));
	}
	mr->exit_rules = add;
}

/* ---------------------------------------------------------------- a peer's routes */

/* A /32 or /128 inside the overlay: a satellite's address, served by the peer that offers it. */
static bool overlay_host(const struct device *dev, const struct control_route *r)
{
	struct control_route v4, v6;

	if (!overlay_routes(dev, &v4, &v6) || r->bits != (r->family == 4 ? 32 : 128))
		return false;
	return route_overlaps(r, r->family == 4 ? &v4 : &v6);
}

/* Why r of peer p cannot be used, or NULL. */
static const char *collision(const struct device *dev, const struct peer *p, const struct control_route *r)
{
	const struct meshroutes *mr = mr_of(dev);
	struct control_route v4, v6;

	if (route_is_exit(r))
		return mr->exit_peer == p ? NULL : "";
	/* One host of the overlay is a satellite behind p (satellites.h); anything wider would
	 * take the mesh's own addresses. Whether another peer owns that host is checked below. */
	if (overlay_routes(dev, &v4, &v6) && (route_overlaps(r, &v4) || route_overlaps(r, &v6)) &&
	    !overlay_host(dev, r))
		return "it overlaps the mesh's own addresses";
	for (size_t i = 0; i < mr->advertised.n; i++)
		if (!route_is_exit(&mr->advertised.list[i]) && route_overlaps(r, &mr->advertised.list[i]))
			return "it overlaps a LAN this node advertises";
	/* Every other peer's allowed IPs: routes in use and static peers' prefixes (an exit's
	 * /0 aside). A walk over the map, done only when a router's routes or record change. */
	struct ip_prefix rp;
	route_to_prefix(r, &rp);
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct peer *o = dev->peers[i];
		if (o == p)
			continue;
		for (size_t j = 0; j < o->n_allowed_ips; j++) {
			const struct ip_prefix *a = &o->allowed_ips[j];
			if (a->bits != 0 && (ip_prefix_within(&rp, a) || ip_prefix_within(a, &rp)))
				return "another peer already routes it";
		}
	}
	return NULL;
}

static void kernel_route(struct device *dev, const struct peer *p, const struct control_route *r, bool add)
{
	struct ip_prefix pfx;
	char text[ROUTE_STR_MAX];

	/* A satellite's host route needs no kernel route: the overlay's already sends it here. */
	if (route_is_exit(r) || !dev->netlink_open || overlay_host(dev, r) || !route_to_prefix(r, &pfx))
		return;
	int err = netlink_route_change(&dev->nl, add, dev->ifindex, &pfx, RT_TABLE_MAIN);
	route_format(r, text, sizeof(text));
	if (err)
		log_warn("route %s via %s: cannot %s the kernel route: %s", text, p->name, add ? "add" : "delete",
			 strerror(-err));
	else
		log_info("route %s via %s: %s", text, p->name, add ? "in use" : "no longer in use");
}

/* Works out which offered routes p may use, and puts its allowed IPs and the kernel's routes
 * in step: the two host addresses from its PEER record first, then the routes. */
static void peer_refresh(struct device *dev, struct peer *p)
{
	struct meshroutes *mr = mr_of(dev);
	struct peer_routes *pr = p->routes;
	uint32_t used = 0;

	if (!pr)
		return;
	for (size_t i = 0; i < pr->offered.n; i++) {
		const char *why = collision(dev, p, &pr->offered.list[i]);
		if (!why) {
			used |= 1u << i;
		} else if (why[0] && !(pr->used & (1u << i))) {
			char text[ROUTE_STR_MAX];
			mr->refused++;
			log_warn("route %s from peer %s ignored: %s", route_format(&pr->offered.list[i], text, sizeof(text)),
				 p->name, why);
		}
	}
	struct ip_prefix ips[2 + CONTROL_MAX_ROUTES];
	size_t n = 0;
	for (size_t i = 0; i < p->n_allowed_ips && i < 2; i++)
		ips[n++] = p->allowed_ips[i]; /* its own addresses (coordmap.c puts them first) */
	for (size_t i = 0; i < pr->offered.n; i++)
		if (used & (1u << i))
			route_to_prefix(&pr->offered.list[i], &ips[n++]);
	if (!peer_set_allowed_ips(dev, p, ips, n)) {
		log_error("peer %s: out of memory for its routes", p->name);
		return;
	}
	for (size_t i = 0; i < pr->offered.n; i++) {
		bool was = pr->used & (1u << i), is = used & (1u << i);
		if (was != is)
			kernel_route(dev, p, &pr->offered.list[i], is);
	}
	pr->used = used;
}

/* Removes every kernel route of p (the offered list is about to change or p to go). */
static void peer_unuse_all(struct device *dev, struct peer *p)
{
	struct peer_routes *pr = p->routes;

	for (size_t i = 0; pr && i < pr->offered.n; i++)
		if (pr->used & (1u << i))
			kernel_route(dev, p, &pr->offered.list[i], false);
	if (pr)
		pr->used = 0;
}

/* ---------------------------------------------------------------- the exit node */

static bool offers_exit(const struct peer *p)
{
	for (size_t i = 0; p->routes && i < p->routes->offered.n; i++)
		if (route_is_exit(&p->routes->offered.list[i]))
			return true;
	return false;
}

/* Picks the exit peer from the choice and the map; logs when that changes. */
static void exit_update(struct device *dev)
{
	struct meshroutes *mr = mr_of(dev);
	struct peer *chosen = NULL, *named = NULL;
	char status[MESHROUTES_STATUS_MAX];

	if (!mr->exit_node[0]) {
		snprintf(status, sizeof(status), "none");
	} else {
		for (size_t i = 0; i < dev->n_peers && !named; i++)
			if (strcmp(dev->peers[i]->name, mr->exit_node) == 0)
				named = dev->peers[i];
		if (!named)
			snprintf(status, sizeof(status), "%s: no such node in the map; internet traffic is dropped",
				 mr->exit_node);
		else if (!offers_exit(named))
			snprintf(status, sizeof(status), "%s: offers no approved exit route; internet traffic is dropped",
				 mr->exit_node);
		else if (!named->coord_online)
			snprintf(status, sizeof(status), "%s: offline; internet traffic is dropped", mr->exit_node);
		else {
			chosen = named;
			snprintf(status, sizeof(status), "%s: in use", mr->exit_node);
		}
	}
	if (strcmp(status, mr->exit_status) != 0) {
		if (chosen || !mr->exit_node[0])
			log_info("exit node %s", status);
		else
			log_warn("exit node %s", status);
		memcpy(mr->exit_status, status, sizeof(status));
	}
	if (chosen == mr->exit_peer)
		return;
	struct peer *old = mr->exit_peer;
	mr->exit_peer = chosen;
	if (old)
		peer_refresh(dev, old);
	if (chosen)
		peer_refresh(dev, chosen);
}

bool meshroutes_set_exit(struct device *dev, const char *name, char *err, size_t err_len)
{
	struct meshroutes *mr = mr_of(dev);

	if (!mr) {
		snprintf(err, err_len, "exit nodes need a coordinator");
		return false;
	}
	if (strlen(name) >= sizeof(mr->exit_node) || (name[0] && !control_name_valid(name))) {
		snprintf(err, err_len, "'%s' is not a node name", name);
		return false;
	}
	snprintf(mr->exit_node, sizeof(mr->exit_node), "%s", name);
	if (name[0] && !mr->exit_rules)
		exit_rules_change(dev, mr, true);
	else if (!name[0] && mr->exit_rules)
		exit_rules_change(dev, mr, false);
	exit_update(dev);
	return true;
}

/* ---------------------------------------------------------------- from the coordinator */

void meshroutes_on_peer_routes(struct device *dev, const struct control_peer_routes *m)
{
	struct meshroutes *mr = mr_of(dev);

	if (!mr)
		return;
	if (memcmp(m->node_key, dev->identity.public_key, WIRE_KEY_LEN) == 0) {
		mr->approved = m->routes; /* ours: for status, and the router's table */
		mr->have_approved = true;
		return;
	}
	struct peer *p = peer_by_public_key(dev, m->node_key);
	if (!p || !p->from_coordinator) {
		mr->refused++; /* routes for a peer we do not have: out of order, or beyond max_peers */
		return;
	}
	if (!p->routes) {
		if (m->routes.n == 0)
			return;
		p->routes = calloc(1, sizeof(*p->routes));
		if (!p->routes) {
			log_error("peer %s: out of memory for its routes", p->name);
			return;
		}
	}
	peer_unuse_all(dev, p);
	p->routes->offered = m->routes;
	peer_refresh(dev, p);
	if (mr->exit_node[0] && (p == mr->exit_peer || strcmp(p->name, mr->exit_node) == 0))
		exit_update(dev);
	if (dev->coord)
		coordmap_mark_dirty(dev->coord, clock_monotonic_ms());
}

void meshroutes_peer_changed(struct device *dev, struct peer *p)
{
	struct meshroutes *mr = mr_of(dev);

	if (!mr)
		return;
	if (p->routes)
		peer_refresh(dev, p); /* its allowed IPs were just reset to its own addresses */
	/* only the exit's record can change the exit: a full map stays linear */
	if (mr->exit_node[0] && (p == mr->exit_peer || strcmp(p->name, mr->exit_node) == 0))
		exit_update(dev);
}

void meshroutes_peer_gone(struct device *dev, struct peer *p)
{
	struct meshroutes *mr = mr_of(dev);

	if (!mr)
		return;
	peer_unuse_all(dev, p);
	if (mr->exit_peer == p) {
		mr->exit_peer = NULL;
		snprintf(mr->exit_status, sizeof(mr->exit_status), "%s: removed from the map; internet traffic is dropped",
			 mr->exit_node);
		log_warn("exit node %s", mr->exit_status);
	}
}

/* ---------------------------------------------------------------- the router side */

static void forward_via(struct device *dev, int ifindex)
{
	char name[IF_NAMESIZE], err[256];

	if (ifindex <= 0 || !if_indextoname((unsigned int)ifindex, name))
		return;
	if (!meshnft_forwarding_on(&mr_of(dev)->nft, name, err, sizeof(err)))
		log_warn("%s", err);
}

void meshroutes_registered(struct device *dev, bool send, uint64_t now_ms)
{
	struct meshroutes *mr = mr_of(dev);
	struct control_route v4, v6;
	char err[512];

	if (!mr || mr->advertised.n == 0)
		return;
	if (send && dev->coord) {
		struct control_message m = { .type = CONTROL_MSG_ROUTES };
		m.u.routes = mr->advertised;
		coordclient_send_message(dev, dev->coord, &m, now_ms);
	}
	if (mr->router_ready || !overlay_routes(dev, &v4, &v6))
		return;
	struct meshnft_spec spec;
	memset(&spec, 0, sizeof(spec));
	route_to_prefix(&v4, &spec.overlay4);
	spec.have_overlay6 = route_to_prefix(&v6, &spec.overlay6);
	for (size_t i = 0; i < mr->advertised.n; i++) {
		if (route_is_exit(&mr->advertised.list[i]))
			spec.exit = true;
		else if (mr->snat)
			spec.snat.list[spec.snat.n++] = mr->advertised.list[i];
	}
	if (!meshnft_apply(&mr->nft, &spec, err, sizeof(err))) {
		log_error("routes: %s; this node cannot forward for the mesh", err);
		return;
	}
	mr->router_ready = true;
	log_info("routes: nftables table inet %s in place (%s%s)", mr->nft.table, spec.snat.n ? "source NAT to the LAN" : "no source NAT",
		 spec.exit ? ", masquerade for the exit" : "");
}

/* Forwarding for our interface and those the advertised networks leave by: at start, while
 * meshd still may write /proc/sys. */
static void router_forwarding(struct device *dev, struct meshroutes *mr)
{
	char err[256];

	if (mr->advertised.n == 0 || !dev->netlink_open)
		return;
	if (!meshnft_forwarding_on(&mr->nft, dev->ifname, err, sizeof(err)))
		log_warn("%s", err);
	for (size_t i = 0; i < mr->advertised.n; i++) {
		const struct control_route *r = &mr->advertised.list[i];
		if (r->family != 4)
			continue; /* IPv6 forwarding is global (net.ipv6.conf.all.forwarding): not ours to set */
		if (route_is_exit(r)) {
			/* The Internet is wherever the default route points; without one (a host
			 * with routes to a few networks only) every interface is an uplink. */
			int oif = netlink_default_oif(&dev->nl, AF_INET);
			if (oif > 0) {
				forward_via(dev, oif);
				continue;
			}
			struct if_nameindex *all = if_nameindex();
			for (struct if_nameindex *ix = all; ix && ix->if_index; ix++)
				if (strcmp(ix->if_name, "lo") != 0)
					forward_via(dev, (int)ix->if_index);
			if (all)
				if_freenameindex(all);
			continue;
		}
		struct ip_prefix pfx;
		route_to_prefix(r, &pfx);
		forward_via(dev, netlink_route_oif(&dev->nl, &pfx));
	}
}

/* ---------------------------------------------------------------- open, reload, close */

static void advertised_from(const struct config *cfg, struct control_routes *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < cfg->n_advertise_routes; i++)
		route_from_prefix(&cfg->advertise_routes[i], &out->list[out->n++]);
	if (cfg->advertise_exit_node) {
		out->list[out->n++] = (struct control_route){ .family = 4 };
		out->list[out->n++] = (struct control_route){ .family = 6 };
	}
}

void meshroutes_reload(struct device *dev, const struct config *n, uint64_t now_ms)
{
	struct meshroutes *mr = mr_of(dev);
	struct control_routes adv;
	char err[256];

	if (!mr)
		return;
	advertised_from(n, &adv);
	bool adv_changed = adv.n != mr->advertised.n ||
			   memcmp(adv.list, mr->advertised.list, adv.n * sizeof(adv.list[0])) != 0;
	if (adv_changed || n->snat_routes != mr->snat) {
		log_info("SIGHUP: advertising %zu route(s), source NAT %s", adv.n, n->snat_routes ? "on" : "off");
		mr->advertised = adv;
		mr->snat = n->snat_routes;
		mr->router_ready = false;
		if (adv.n == 0 && mr->nft.active && !meshnft_apply(&mr->nft, NULL, err, sizeof(err)))
			log_warn("routes: %s", err);
		router_forwarding(dev, mr);
		if (adv.n == 0 && adv_changed && dev->coord && coordclient_ready(dev)) {
			struct control_message m = { .type = CONTROL_MSG_ROUTES };
			coordclient_send_message(dev, dev->coord, &m, now_ms); /* none any more */
		}
		meshroutes_registered(dev, adv_changed && dev->coord && coordclient_ready(dev), now_ms);
	}
	if (n->exit_node_allow_lan != mr->exit_allow_lan) {
		bool had = mr->exit_rules;
		if (had)
			exit_rules_change(dev, mr, false);
		mr->exit_allow_lan = n->exit_node_allow_lan;
		if (had)
			exit_rules_change(dev, mr, true);
	}
	if (strcmp(n->exit_node, mr->exit_node) != 0 && !meshroutes_set_exit(dev, n->exit_node, err, sizeof(err)))
		log_warn("SIGHUP: exit_node: %s", err);
}

bool meshroutes_open(struct device *dev, const struct config *cfg, char *err, size_t err_len)
{
	struct meshroutes *mr = calloc(1, sizeof(*mr));

	if (!mr) {
		snprintf(err, err_len, "out of memory");
		return false;
	}
	dev->mroutes = mr;
	meshnft_init(&mr->nft, dev->ifname);
	advertised_from(cfg, &mr->advertised);
	mr->snat = cfg->snat_routes;
	mr->exit_allow_lan = cfg->exit_node_allow_lan;
	snprintf(mr->exit_status, sizeof(mr->exit_status), "none");
	/* A crash leaves our table, rules and exit route behind: replace or remove them. */
	if (dev->netlink_open)
		meshnft_remove_stale(&mr->nft);
	exit_rules_change(dev, mr, false);
	router_forwarding(dev, mr);
	if (cfg->exit_node[0] && !meshroutes_set_exit(dev, cfg->exit_node, err, err_len))
		return false;
	return true;
}

void meshroutes_close(struct device *dev)
{
	struct meshroutes *mr = mr_of(dev);

	if (!mr)
		return;
	for (size_t i = 0; i < dev->n_peers; i++)
		peer_unuse_all(dev, dev->peers[i]);
	if (mr->exit_rules)
		exit_rules_change(dev, mr, false);
	meshnft_close(&mr->nft);
	free(mr);
	dev->mroutes = NULL;
}
