/* meshnft.h: nftables through libnftables, and the forwarding switches in /proc/sys. */
#include "meshd/meshnft.h"

#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/dynlib.h"
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

/* libnftables is loaded, not linked (core/dynlib.h): with libnftnl, libxtables, libjansson
 * and libgmp it costs ~1.3 MB of RSS. Only subnet routers and exit nodes (and a node using
 * an exit) ever apply a table, and only when their routes change: each apply loads it and
 * unloads it after (a few ms), so even they idle without it. */
struct nft_api {
	__typeof__(&nft_ctx_new) ctx_new;
	__typeof__(&nft_ctx_free) ctx_free;
	__typeof__(&nft_ctx_buffer_output) buffer_output;
	__typeof__(&nft_ctx_buffer_error) buffer_error;
	__typeof__(&nft_ctx_get_error_buffer) get_error_buffer;
	__typeof__(&nft_run_cmd_from_buffer) run_cmd_from_buffer;
};

/* Runs one buffer of nft commands as one transaction. */
static bool nft_run(const char *cmds, char *err, size_t err_len)
{
	struct nft_api api;
	const struct dynlib_symbol symbols[] = {
		DYNLIB_SYMBOL(api.ctx_new, "nft_ctx_new"),
		DYNLIB_SYMBOL(api.ctx_free, "nft_ctx_free"),
		DYNLIB_SYMBOL(api.buffer_output, "nft_ctx_buffer_output"),
		DYNLIB_SYMBOL(api.buffer_error, "nft_ctx_buffer_error"),
		DYNLIB_SYMBOL(api.get_error_buffer, "nft_ctx_get_error_buffer"),
		DYNLIB_SYMBOL(api.run_cmd_from_buffer, "nft_run_cmd_from_buffer"),
	};
	char why[200];
	void *lib = dynlib_open(LIBNFTABLES_SONAME, symbols, sizeof(symbols) / sizeof(symbols[0]), why, sizeof(why));

	if (!lib) {
		snprintf(err, err_len, "nftables: %s (Debian: install libnftables1)", why);
		return false;
	}
	struct nft_ctx *ctx = api.ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		snprintf(err, err_len, "nftables: cannot create a context (out of memory)");
		dynlib_close(lib);
		return false;
	}
	api.buffer_output(ctx);
	api.buffer_error(ctx);
	int rc = api.run_cmd_from_buffer(ctx, cmds);
	if (rc != 0) {
		const char *e = api.get_error_buffer(ctx);
		size_t len = e ? strcspn(e, "\n") : 0;
		snprintf(err, err_len, "nftables refused the table: %.*s (is the nf_tables module available?)",
			 (int)(len > 200 ? 200 : len), e ? e : "");
	}
	api.ctx_free(ctx);
	dynlib_close(lib);
	return rc == 0;
}

/* Asks nf_tables over netlink whether our table exists, without libnftables: at start, a
 * crash's leftover table must go, but loading the library only to learn there is none would
 * cost every node its RSS. Returns 1 (exists), 0 (absent), -1 (could not tell). */
static int table_exists(const char *table)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	int result = -1;

	if (!nl)
		return -1;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto out;
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	nlh->nlmsg_seq = 1;
	struct nfgenmsg *nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = NFPROTO_INET;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	mnl_attr_put_strz(nlh, NFTA_TABLE_NAME, table);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		goto out;
	/* The answer is the table (NEWTABLE) then an ACK, or one error: ENOENT when absent. The
	 * kernel answers at once; the timeout only keeps a broken one from stalling the start. */
	struct timeval patience = { .tv_sec = 1 };
	setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof(patience));
	bool done = false;
	for (int round = 0; round < 4 && !done; round++) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n <= 0)
			break;
		const struct nlmsghdr *m = (const struct nlmsghdr *)buf;
		for (int len = (int)n; mnl_nlmsg_ok(m, len) && !done; m = mnl_nlmsg_next(m, &len)) {
			if (m->nlmsg_type >> 8 == NFNL_SUBSYS_NFTABLES && (m->nlmsg_type & 0xff) == NFT_MSG_NEWTABLE) {
				result = 1;
				done = true;
			} else if (m->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(m);
				done = true;
				if (m->nlmsg_len >= mnl_nlmsg_size(sizeof(*e)) && e->error == -ENOENT)
					result = 0;
			}
		}
	}
out:
	mnl_socket_close(nl);
	return result;
}

void meshnft_remove_stale(struct meshnft *m)
{
	char err[256];
	int exists = table_exists(m->table);

	if (exists == 0)
		return;
	if (!meshnft_apply(m, NULL, err, sizeof(err)))
		log_debug("nftables: %s", err);
	else if (exists == 1)
		log_info("removed the nftables table inet %s left by an earlier run", m->table);
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
