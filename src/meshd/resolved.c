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
#include <unistd.h>

#include "core/dns.h"
#include "core/dynlib.h"
#include "core/log.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"

#define RESOLVE1_NAME "org.freedesktop.resolve1"
#define RESOLVE1_PATH "/org/freedesktop/resolve1"
#define RESOLVE1_MANAGER "org.freedesktop.resolve1.Manager"

/* libsystemd is loaded, not linked (core/dynlib.h): with libgcrypt, liblz4, libzstd and
 * liblzma it costs ~1.3 MB of RSS. resolved is called at start, when the mesh's DNS settings
 * change and at exit; each time the library is loaded, a bus connection made, the calls sent
 * and both closed again (resolved keeps link settings after the caller goes), so a node idles
 * without it. */
struct sdbus_api {
	__typeof__(&sd_bus_call) call;
	__typeof__(&sd_bus_error_free) error_free;
	__typeof__(&sd_bus_error_has_names_sentinel) error_has_names_sentinel;
	__typeof__(&sd_bus_error_is_set) error_is_set;
	__typeof__(&sd_bus_flush) flush;
	__typeof__(&sd_bus_flush_close_unref) flush_close_unref;
	__typeof__(&sd_bus_message_append) message_append;
	__typeof__(&sd_bus_message_append_array) message_append_array;
	__typeof__(&sd_bus_message_close_container) message_close_container;
	__typeof__(&sd_bus_message_new_method_call) message_new_method_call;
	__typeof__(&sd_bus_message_open_container) message_open_container;
	__typeof__(&sd_bus_message_set_expect_reply) message_set_expect_reply;
	__typeof__(&sd_bus_message_unref) message_unref;
	__typeof__(&sd_bus_open_system) open_system;
	__typeof__(&sd_bus_send) send;
};

/* One conversation with the system bus: the library, its functions and a connection. */
struct sdbus_session {
	void *lib;
	struct sdbus_api api;
	sd_bus *bus;
};

/* No system bus here (no env override and no socket): nothing to load. sd-bus's own rule
 * for the address: $DBUS_SYSTEM_BUS_ADDRESS, else this socket. */
static bool system_bus_absent(void)
{
	const char *env = getenv("DBUS_SYSTEM_BUS_ADDRESS");
	return !(env && env[0]) && access("/run/dbus/system_bus_socket", F_OK) != 0;
}

/* Loads libsystemd and connects; false (logged at debug or info) when either fails. */
static bool sdbus_begin(struct sdbus_session *s)
{
	struct sdbus_api *api = &s->api;
	const struct dynlib_symbol symbols[] = {
		DYNLIB_SYMBOL(api->call, "sd_bus_call"),
		DYNLIB_SYMBOL(api->error_free, "sd_bus_error_free"),
		DYNLIB_SYMBOL(api->error_has_names_sentinel, "sd_bus_error_has_names_sentinel"),
		DYNLIB_SYMBOL(api->error_is_set, "sd_bus_error_is_set"),
		DYNLIB_SYMBOL(api->flush, "sd_bus_flush"),
		DYNLIB_SYMBOL(api->flush_close_unref, "sd_bus_flush_close_unref"),
		DYNLIB_SYMBOL(api->message_append, "sd_bus_message_append"),
		DYNLIB_SYMBOL(api->message_append_array, "sd_bus_message_append_array"),
		DYNLIB_SYMBOL(api->message_close_container, "sd_bus_message_close_container"),
		DYNLIB_SYMBOL(api->message_new_method_call, "sd_bus_message_new_method_call"),
		DYNLIB_SYMBOL(api->message_open_container, "sd_bus_message_open_container"),
		DYNLIB_SYMBOL(api->message_set_expect_reply, "sd_bus_message_set_expect_reply"),
		DYNLIB_SYMBOL(api->message_unref, "sd_bus_message_unref"),
		DYNLIB_SYMBOL(api->open_system, "sd_bus_open_system"),
		DYNLIB_SYMBOL(api->send, "sd_bus_send"),
	};
	char err[256];

	memset(s, 0, sizeof(*s));
	if (system_bus_absent()) {
		log_debug("systemd-resolved: no system bus; resolver settings left alone");
		return false;
	}
	s->lib = dynlib_open(LIBSYSTEMD_SONAME, symbols, sizeof(symbols) / sizeof(symbols[0]), err, sizeof(err));
	if (!s->lib) {
		log_info("systemd-resolved: %s; resolver settings left alone (use 'dig @100.100.100.100')", err);
		return false;
	}
	int r = api->open_system(&s->bus);
	if (r < 0) {
		log_debug("systemd-resolved: no system bus (%s); resolver settings left alone", strerror(-r));
		dynlib_close(s->lib);
		s->lib = NULL;
		return false;
	}
	return true;
}

/* Sends what is queued, closes the connection and unloads the library. */
static void sdbus_end(struct sdbus_session *s)
{
	if (!s->lib)
		return;
	s->api.flush_close_unref(s->bus);
	dynlib_close(s->lib);
	s->lib = NULL;
}

struct resolved_link {
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

static int new_call(const struct sdbus_session *s, const char *method, sd_bus_message **m)
{
	return s->api.message_new_method_call(s->bus, m, RESOLVE1_NAME, RESOLVE1_PATH, RESOLVE1_MANAGER, method);
}

/* Sends m: waits for the answer (wait) or not. Returns 0, or a negative errno; err is set
 * when the bus answered with an error. */
static int send_call(const struct sdbus_session *s, sd_bus_message *m, bool wait, sd_bus_error *err)
{
	if (!wait) {
		int r = s->api.message_set_expect_reply(m, 0);
		if (r >= 0)
			r = s->api.send(s->bus, m, NULL);
		if (r >= 0)
			r = s->api.flush(s->bus); /* a local socket: written at once */
		return r < 0 ? r : 0;
	}
	int r = s->api.call(s->bus, m, RESOLVED_CALL_TIMEOUT_US, err, NULL);
	return r < 0 ? r : 0;
}

static int set_dns(const struct sdbus_session *s, const struct resolved_args *a, bool wait, sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(s, "SetLinkDNS", &m);
	if (r >= 0)
		r = s->api.message_append(m, "i", a->ifindex);
	if (r >= 0)
		r = s->api.message_open_container(m, 'a', "(iay)");
	if (r >= 0)
		r = s->api.message_append(m, "(iay)", a->family4, 4, a->addr4[0], a->addr4[1], a->addr4[2], a->addr4[3]);
	if (r >= 0 && a->have6) {
		r = s->api.message_open_container(m, 'r', "iay");
		if (r >= 0)
			r = s->api.message_append(m, "i", (int32_t)AF_INET6);
		if (r >= 0)
			r = s->api.message_append_array(m, 'y', a->addr6, 16);
		if (r >= 0)
			r = s->api.message_close_container(m);
	}
	if (r >= 0)
		r = s->api.message_close_container(m);
	if (r >= 0)
		r = send_call(s, m, wait, err);
	s->api.message_unref(m);
	return r;
}

static int set_domains(const struct sdbus_session *s, const struct resolved_args *a, bool wait, sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(s, "SetLinkDomains", &m);
	if (r >= 0 && a->domain[0])
		r = s->api.message_append(m, "ia(sb)", a->ifindex, 1, a->domain, 1);
	else if (r >= 0)
		r = s->api.message_append(m, "ia(sb)", a->ifindex, 0);
	if (r >= 0)
		r = send_call(s, m, wait, err);
	s->api.message_unref(m);
	return r;
}

static int simple_call(const struct sdbus_session *s, const char *method, const char *sig, int32_t ifindex, int flag, bool wait,
		       sd_bus_error *err)
{
	sd_bus_message *m = NULL;
	int r = new_call(s, method, &m);
	if (r >= 0)
		r = sig[1] ? s->api.message_append(m, sig, ifindex, flag) : s->api.message_append(m, sig, ifindex);
	if (r >= 0)
		r = send_call(s, m, wait, err);
	s->api.message_unref(m);
	return r;
}

static const char *why(const struct sdbus_session *s, int r, const sd_bus_error *err)
{
	return s->api.error_is_set(err) ? err->message : strerror(-r);
}

struct resolved_link *resolved_link_open(struct device *dev)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	struct sdbus_session bus;
	struct resolved_link *l = calloc(1, sizeof(*l));
	uint8_t s6[16];
	bool have6 = dnsd_service_ipv6(dev, s6);

	if (!l || !resolved_args_build(&l->args, dev->ifindex, have6 ? s6 : NULL, coordclient_dns_domain(dev)) ||
	    !sdbus_begin(&bus)) {
		free(l);
		return NULL;
	}
	int r = set_dns(&bus, &l->args, true, &err);
	if (r < 0) {
		if (bus.api.error_has_names_sentinel(&err, SD_BUS_ERROR_SERVICE_UNKNOWN, SD_BUS_ERROR_NAME_HAS_NO_OWNER,
						     NULL))
			log_debug("systemd-resolved is not running; resolver settings left alone");
		else
			log_warn("systemd-resolved refused DNS settings for %s (%s): use 'dig @100.100.100.100', or "
				 "set dns_resolved: off", dev->ifname, why(&bus, r, &err));
		bus.api.error_free(&err);
		sdbus_end(&bus);
		free(l);
		return NULL;
	}
	bus.api.error_free(&err);
	/* Only the mesh's domain comes to us: not the default route for other names. */
	r = simple_call(&bus, "SetLinkDefaultRoute", "ib", l->args.ifindex, 0, true, &err);
	if (r < 0)
		log_debug("systemd-resolved: SetLinkDefaultRoute: %s (older than v240?)", why(&bus, r, &err));
	bus.api.error_free(&err);
	if (l->args.domain[0]) {
		r = set_domains(&bus, &l->args, true, &err);
		if (r < 0)
			log_warn("systemd-resolved refused the routing domain ~%s for %s: %s", l->args.domain, dev->ifname,
				 why(&bus, r, &err));
	}
	bus.api.error_free(&err);
	sdbus_end(&bus);
	return l;
}

void resolved_link_update(struct resolved_link *l, const uint8_t *service6, const char *domain)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	struct sdbus_session bus;
	struct resolved_args n;
	if (!l || !resolved_args_build(&n, l->args.ifindex, service6, domain))
		return;
	bool dns_changed = n.have6 != l->args.have6 || memcmp(n.addr6, l->args.addr6, 16) != 0;
	bool domain_changed = strcmp(n.domain, l->args.domain) != 0;
	l->args = n;
	if ((!dns_changed && !domain_changed) || !sdbus_begin(&bus))
		return;
	/* Not waited for: the event loop goes on; sdbus_end flushes them out. */
	int r = dns_changed ? set_dns(&bus, &l->args, false, &err) : 0;
	if (r < 0)
		log_warn("systemd-resolved: could not send the interface's DNS servers: %s", why(&bus, r, &err));
	bus.api.error_free(&err);
	r = domain_changed ? set_domains(&bus, &l->args, false, &err) : 0;
	if (r < 0)
		log_warn("systemd-resolved: could not send the routing domain ~%s: %s", n.domain, why(&bus, r, &err));
	bus.api.error_free(&err);
	sdbus_end(&bus);
}

void resolved_link_close(struct resolved_link *l)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	struct sdbus_session bus;
	if (!l)
		return;
	if (sdbus_begin(&bus)) {
		int r = simple_call(&bus, "RevertLink", "i", l->args.ifindex, 0, true, &err);
		if (r < 0)
			log_warn("systemd-resolved: RevertLink failed (%s); its settings for the interface go with it",
				 why(&bus, r, &err));
		bus.api.error_free(&err);
		sdbus_end(&bus);
	}
	free(l);
}
