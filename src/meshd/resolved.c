/* systemd-resolved over D-Bus (resolved.h). resolved's Manager methods used, with their
 * signatures (org.freedesktop.resolve1(5)):
 *   SetLinkDNS(i ifindex, a(iay) addresses)     the link's DNS servers: our service address
 *   SetLinkDomains(i ifindex, a(sb) domains)     (domain, routing-only): ("mesh.internal", true)
 *   SetLinkDefaultRoute(i ifindex, b enable)     false: only the mesh's domain comes to us
 *   RevertLink(i ifindex)                        back to nothing, at exit */
#include "meshd/resolved.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>

#include "core/dns.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"

#define RESOLVE1_NAME "org.freedesktop.resolve1"
#define RESOLVE1_PATH "/org/freedesktop/resolve1"
#define RESOLVE1_MANAGER "org.freedesktop.resolve1.Manager"

struct resolved_link {
	sd_bus *bus;
	struct resolved_args args;
};

bool resolved_args_build(struct resolved_args *a, int ifindex, const uint8_t *service6, const char *domain)
{
	memset(a, 0, sizeof(*a));
	if (ifindex <= 0 || (domain && !dns_domain_valid(domain)))
		return false;
	a->ifindex = ifindex;
	a->family4 = AF_INET;
	a->addr4[0] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 24);
	a->addr4[1] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 16);
	a->addr4[2] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 8);
	a->addr4[3] = (uint8_t)DNS_MESH_SERVICE_IPV4;
	if (service6) {
		a->have6 = true;
		memcpy(a->addr6, service6, 16);
	}
	if (domain)
		snprintf(a->domain, sizeof(a->domain), "%s", domain);
	return true;
}

static int new_call(sd_bus *bus, const char *method, sd_bus_message **m)
{
	return sd_bus_message_new_method_call(bus, m, RESOLVE1_NAME, RESOLVE1_PATH, RESOLVE1_MANAGER, method);
}

/* Sends m: waits for the answer (wait) or not. Returns 0, or a negative errno; err is set
 * when the bus answered with an error. */
static int send_call(sd_bus *bus, sd_bus_message *m, bool wait, sd_bus_error *err)
{
	if (!wait) {
		int r = sd_bus_message_set_expect_reply(m, 0);
		if (r >= 0)
			r = sd_bus_send(bus, m, NULL);
		if (r >= 0)
			r = sd_bus_flush(bus); /* a local socket: written at once */
		return r < 0 ? r : 0;
	}
	int r = sd_bus_call(bus, m, RESOLVED_CALL_TIMEOUT_US, err, NULL);
	return r < 0 ? r : 0;
}

static int set_dns(sd_bus *bus, const struct resolved_args *a, bool wait, sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(bus, "SetLinkDNS", &m);
	if (r >= 0)
		r = sd_bus_message_append(m, "i", a->ifindex);
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(iay)");
	if (r >= 0)
		r = sd_bus_message_append(m, "(iay)", a->family4, 4, a->addr4[0], a->addr4[1], a->addr4[2], a->addr4[3]);
	if (r >= 0 && a->have6) {
		r = sd_bus_message_open_container(m, 'r', "iay");
		if (r >= 0)
			r = sd_bus_message_append(m, "i", (int32_t)AF_INET6);
		if (r >= 0)
			r = sd_bus_message_append_array(m, 'y', a->addr6, 16);
		if (r >= 0)
			r = sd_bus_message_close_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(m);
	if (r >= 0)
		r = send_call(bus, m, wait, err);
	sd_bus_message_unref(m);
	return r;
}

static int set_domains(sd_bus *bus, const struct resolved_args *a, bool wait, sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(bus, "SetLinkDomains", &m);
	if (r >= 0 && a->domain[0])
		r = sd_bus_message_append(m, "ia(sb)", a->ifindex, 1, a->domain, 1);
	else if (r >= 0)
		r = sd_bus_message_append(m, "ia(sb)", a->ifindex, 0);
	if (r >= 0)
		r = send_call(bus, m, wait, err);
	sd_bus_message_unref(m);
	return r;
}

static int simple_call(sd_bus *bus, const char *method, const char *sig, int32_t ifindex, int flag, bool wait,
		       sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(bus, method, &m);
	if (r >= 0)
		r = sig[1] ? sd_bus_message_append(m, sig, ifindex, flag) : sd_bus_message_append(m, sig, ifindex);
	if (r >= 0)
		r = send_call(bus, m, wait, err);
	sd_bus_message_unref(m);
	return r;
}

static const char *why(int r, const sd_bus_error *err)
{
	return sd_bus_error_is_set(err) ? err->message : strerror(-r);
}

struct resolved_link *resolved_link_open(struct device *dev)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	struct resolved_link *l = calloc(1, sizeof(*l));
	uint8_t s6[16];
	bool have6 = dnsd_service_ipv6(dev, s6);

	if (!l || !resolved_args_build(&l->args, dev->ifindex, have6 ? s6 : NULL, coordclient_dns_domain(dev))) {
		free(l);
		return NULL;
	}
	int r = sd_bus_open_system(&l->bus);
	if (r < 0) {
		log_debug("systemd-resolved: no system bus (%s); resolver settings left alone", strerror(-r));
		goto fail;
	}
	r = set_dns(l->bus, &l->args, true, &err);
	if (r < 0) {
		if (sd_bus_error_has_names(&err, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
			log_debug("systemd-resolved is not running; resolver settings left alone");
		else
			log_warn("systemd-resolved refused DNS settings for %s (%s): use 'dig @100.100.100.100', or "
				 "set dns_resolved: off", dev->ifname, why(r, &err));
		goto fail;
	}
	sd_bus_error_free(&err);
	/* Only the mesh's domain comes to us: not the default route for other names. */
	r = simple_call(l->bus, "SetLinkDefaultRoute", "ib", l->args.ifindex, 0, true, &err);
	if (r < 0)
		log_debug("systemd-resolved: SetLinkDefaultRoute: %s (older than v240?)", why(r, &err));
	sd_bus_error_free(&err);
	if (l->args.domain[0]) {
		r = set_domains(l->bus, &l->args, true, &err);
		if (r < 0)
			log_warn("systemd-resolved refused the routing domain ~%s for %s: %s", l->args.domain, dev->ifname,
				 why(r, &err));
	}
	sd_bus_error_free(&err);
	return l;
fail:
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(l->bus);
	free(l);
	return NULL;
}

void resolved_link_update(struct resolved_link *l, const uint8_t *service6, const char *domain)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	struct resolved_args n;
	if (!l || !resolved_args_build(&n, l->args.ifindex, service6, domain))
		return;
	bool dns_changed = n.have6 != l->args.have6 || memcmp(n.addr6, l->args.addr6, 16) != 0;
	bool domain_changed = strcmp(n.domain, l->args.domain) != 0;
	l->args = n;
	int r = dns_changed ? set_dns(l->bus, &l->args, false, &err) : 0;
	if (r < 0)
		log_warn("systemd-resolved: could not send the interface's DNS servers: %s", why(r, &err));
	sd_bus_error_free(&err);
	r = domain_changed ? set_domains(l->bus, &l->args, false, &err) : 0;
	if (r < 0)
		log_warn("systemd-resolved: could not send the routing domain ~%s: %s", n.domain, why(r, &err));
	sd_bus_error_free(&err);
}

void resolved_link_close(struct resolved_link *l)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	if (!l)
		return;
	int r = simple_call(l->bus, "RevertLink", "i", l->args.ifindex, 0, true, &err);
	if (r < 0)
		log_warn("systemd-resolved: RevertLink failed (%s); its settings for the interface go with it", why(r, &err));
	sd_bus_error_free(&err);
	sd_bus_flush_close_unref(l->bus);
	free(l);
}
