/* meshnft.h: nftables through libnftables, and the forwarding switches in /proc/sys. */
#include "meshd/meshnft.h"

#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/routes.h"

/* Appends to out; false once it no longer fits. */
static bool put(char *out, size_t cap, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static bool put(char *out, size_t cap, size_t *used, const char *fmt, ...)
{
	va_list ap;

	if (*used >= cap)
		return false;
	va_start(ap, fmt);
	int n = vsnprintf(out + *used, cap - *used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *used) {
		*used = cap;
		return false;
	}
	*used += (size_t)n;
	return true;
}

bool meshnft_format(const char *ifname, const struct meshnft_spec *spec, char *out, size_t cap)
{
	char o4[IP_PREFIX_STR_MAX], o6[IP_PREFIX_STR_MAX], dst[ROUTE_STR_MAX];
	size_t used = 0;

	ip_prefix_format(&spec->overlay4, o4, sizeof(o4));
	ip_prefix_format(&spec->overlay6, o6, sizeof(o6));
	/* "add" then "delete" never fails, so a stale table from a crash is replaced too, in
	 * the same transaction as the new one. */
	put(out, cap, &used, "add table inet meshd_%s\ndelete table inet meshd_%s\n", ifname, ifname);
	put(out, cap, &used, "table inet meshd_%s {\n", ifname);
	/* Another table's drop still drops: these accepts matter where the forward policy is
	 * accept and document what meshd forwards. Replies come back through conntrack. */
	put(out, cap, &used,
	    "  chain forward {\n    type filter hook forward priority filter; policy accept;\n"
	    "    iifname \"%s\" accept\n    oifname \"%s\" ct state established,related accept\n  }\n",
	    ifname, ifname);
	put(out, cap, &used, "  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
	for (size_t i = 0; i < spec->snat.n; i++) {
		const struct control_route *r = &spec->snat.list[i];
		if (r->family == 6 && !spec->have_overlay6)
			continue;
		put(out, cap, &used, "    oifname != \"%s\" %s saddr %s %s daddr %s masquerade\n", ifname,
		    r->family == 4 ? "ip" : "ip6", r->family == 4 ? o4 : o6, r->family == 4 ? "ip" : "ip6",
		    route_format(r, dst, sizeof(dst)));
	}
	if (spec->exit) {
		put(out, cap, &used, "    oifname != \"%s\" ip saddr %s masquerade\n", ifname, o4);
		if (spec->have_overlay6)
			put(out, cap, &used, "    oifname != \"%s\" ip6 saddr %s masquerade\n", ifname, o6);
	}
	return put(out, cap, &used, "  }\n}\n");
}

void meshnft_init(struct meshnft *m, const char *ifname)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->ifname, sizeof(m->ifname), "%s", ifname);
	snprintf(m->table, sizeof(m->table), "meshd_%s", ifname);
}

/* Runs one buffer of nft commands as one transaction. */
static bool nft_run(const char *cmds, char *err, size_t err_len)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);

	if (!ctx) {
		snprintf(err, err_len, "nftables: cannot create a context (out of memory)");
		return false;
	}
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	int rc = nft_run_cmd_from_buffer(ctx, cmds);
	if (rc != 0) {
		const char *e = nft_ctx_get_error_buffer(ctx);
		size_t len = e ? strcspn(e, "\n") : 0;
		snprintf(err, err_len, "nftables refused the table: %.*s (is the nf_tables module available?)",
			 (int)(len > 200 ? 200 : len), e ? e : "");
	}
	nft_ctx_free(ctx);
	return rc == 0;
}

bool meshnft_apply(struct meshnft *m, const struct meshnft_spec *spec, char *err, size_t err_len)
{
	char buf[MESHNFT_RULESET_MAX];

	if (!spec) {
		snprintf(buf, sizeof(buf), "add table inet %s\ndelete table inet %s\n", m->table, m->table);
		bool ok = nft_run(buf, err, err_len);
		if (ok)
			m->active = false;
		return ok;
	}
	if (!meshnft_format(m->ifname, spec, buf, sizeof(buf))) {
		snprintf(err, err_len, "nftables: the ruleset does not fit %d bytes", MESHNFT_RULESET_MAX);
		return false;
	}
	if (!nft_run(buf, err, err_len))
		return false;
	m->active = true;
	return true;
}

static bool sysctl_path(const char *ifname, char *out, size_t cap)
{
	int n = snprintf(out, cap, "/proc/sys/net/ipv4/conf/%s/forwarding", ifname);
	return n > 0 && (size_t)n < cap;
}

static bool sysctl_write(const char *path, char v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = write(fd, &v, 1) == 1;
	return close(fd) == 0 && ok;
}

bool meshnft_forwarding_on(struct meshnft *m, const char *ifname, char *err, size_t err_len)
{
	char path[128], old = '0';

	for (size_t i = 0; i < m->n_fwd; i++)
		if (strcmp(m->fwd_if[i], ifname) == 0)
			return true;
	if (m->n_fwd == MESHNFT_FORWARD_MAX || !sysctl_path(ifname, path, sizeof(path))) {
		snprintf(err, err_len, "forwarding: too many interfaces (%s)", ifname);
		return false;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, &old, 1) != 1) {
		snprintf(err, err_len, "forwarding: cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	if (old != '1' && !sysctl_write(path, '1')) {
		snprintf(err, err_len, "forwarding: cannot write %s: %s (meshd needs root for it)", path, strerror(errno));
		return false;
	}
	snprintf(m->fwd_if[m->n_fwd], IFNAMSIZ, "%s", ifname);
	m->fwd_old[m->n_fwd++] = old;
	if (old != '1')
		log_info("forwarding switched on for %s (net.ipv4.conf.%s.forwarding; restored on exit)", ifname, ifname);
	return true;
}

void meshnft_close(struct meshnft *m)
{
	char err[256], path[128];

	if (m->active && !meshnft_apply(m, NULL, err, sizeof(err)))
		log_warn("cannot delete nftables table inet %s: %s", m->table, err);
	for (size_t i = 0; i < m->n_fwd; i++) {
		if (m->fwd_old[i] == '1' || !sysctl_path(m->fwd_if[i], path, sizeof(path)))
			continue;
		/* The interface may be gone (our TUN is): nothing to restore then. */
		if (!sysctl_write(path, m->fwd_old[i]) && errno != ENOENT)
			log_warn("cannot restore %s to %c: %s", path, m->fwd_old[i], strerror(errno));
	}
	m->n_fwd = 0;
}
