/* rtnetlink for subnet routes and exit nodes: routes in a table of meshd's own, the policy
 * rules that send everything but meshd's marked sockets there, and the uplink's interface
 * (the main table's default route), so the exit node knows where to forward. Same rules as
 * netlink.c: one request, one ack, 0 or -errno, no logging. */
#include "meshd/netlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <string.h>
#include <sys/socket.h>

enum {
	POLICY_REQUEST_LEN = 1024,
	POLICY_RTPROT_MESHD = 77, /* netlink.c's NETLINK_RTPROT_MESHD: our routes' mark */
};

int netlink_route_change(struct netlink *nl, bool add, int ifindex, const struct ip_prefix *dst, uint32_t table)
{
	alignas(struct nlmsghdr) char buf[POLICY_REQUEST_LEN];
	size_t alen = dst->family == AF_INET ? 4 : dst->family == AF_INET6 ? 16 : 0;
	struct ip_prefix net = ip_prefix_network(dst);

	if (ifindex <= 0 || alen == 0 || dst->bits > alen * 8)
		return -EINVAL;
	struct nlmsghdr *nlh = netlink_start(buf, add ? RTM_NEWROUTE : RTM_DELROUTE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)dst->family;
	rtm->rtm_dst_len = dst->bits;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = POLICY_RTPROT_MESHD;
	rtm->rtm_type = RTN_UNICAST;
	rtm->rtm_scope = add ? (dst->family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE) : RT_SCOPE_NOWHERE;
	if (dst->bits > 0 && !mnl_attr_put_check(nlh, sizeof(buf), RTA_DST, alen, net.addr))
		return -EMSGSIZE;
	if (!mnl_attr_put_u32_check(nlh, sizeof(buf), RTA_OIF, (uint32_t)ifindex) ||
	    !mnl_attr_put_u32_check(nlh, sizeof(buf), RTA_TABLE, table))
		return -EMSGSIZE;
	int err = netlink_request(nl, nlh, NULL, NULL);
	if (add && err == -EEXIST)
		return 0;
	if (!add && (err == -ESRCH || err == -ENOENT))
		return 0;
	return err;
}

int netlink_rule_change(struct netlink *nl, bool add, const struct netlink_rule *r)
{
	alignas(struct nlmsghdr) char buf[POLICY_REQUEST_LEN];
	struct nlmsghdr *nlh = netlink_start(buf, add ? RTM_NEWRULE : RTM_DELRULE, add ? NLM_F_CREATE | NLM_F_EXCL : 0);
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));

	frh->family = (uint8_t)r->family;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	if (r->invert)
		frh->flags |= FIB_RULE_INVERT;
	if (!mnl_attr_put_u32_check(nlh, sizeof(buf), FRA_PRIORITY, r->priority) ||
	    !mnl_attr_put_u32_check(nlh, sizeof(buf), FRA_TABLE, r->table))
		return -EMSGSIZE;
	if (r->fwmark && (!mnl_attr_put_u32_check(nlh, sizeof(buf), FRA_FWMARK, r->fwmark) ||
			  !mnl_attr_put_u32_check(nlh, sizeof(buf), FRA_FWMASK, r->fwmark)))
		return -EMSGSIZE;
	if (r->suppress_prefixlen0 && !mnl_attr_put_u32_check(nlh, sizeof(buf), FRA_SUPPRESS_PREFIXLEN, 0))
		return -EMSGSIZE;
	int err = netlink_request(nl, nlh, NULL, NULL);
	if (add && err == -EEXIST)
		return 0;
	if (!add && err == -ENOENT)
		return 0;
	return err;
}

struct default_ctx {
	int oif;
};

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, RTA_MAX) < 0)
		return MNL_CB_OK;
	tb[type] = attr;
	return MNL_CB_OK;
}

static int default_route_cb(const struct nlmsghdr *nlh, void *data)
{
	struct default_ctx *ctx = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[RTA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWROUTE || rtm->rtm_dst_len != 0 || rtm->rtm_type != RTN_UNICAST)
		return MNL_CB_OK;
	memset(tb, 0, sizeof(tb));
	mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, tb);
	uint32_t table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (table == RT_TABLE_MAIN && tb[RTA_OIF] && ctx->oif <= 0)
		ctx->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	return MNL_CB_OK;
}

int netlink_default_oif(struct netlink *nl, int family)
{
	alignas(struct nlmsghdr) char buf[POLICY_REQUEST_LEN];
	struct default_ctx ctx = { .oif = -ENOENT };
	struct nlmsghdr *nlh = netlink_start(buf, RTM_GETROUTE, NLM_F_DUMP);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)family;
	int err = netlink_request(nl, nlh, default_route_cb, &ctx);
	return err < 0 ? err : ctx.oif;
}

static int route_oif_cb(const struct nlmsghdr *nlh, void *data)
{
	struct default_ctx *ctx = data;
	const struct nlattr *tb[RTA_MAX + 1];

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	memset(tb, 0, sizeof(tb));
	mnl_attr_parse(nlh, sizeof(struct rtmsg), route_attr_cb, tb);
	if (tb[RTA_OIF])
		ctx->oif = (int)mnl_attr_get_u32(tb[RTA_OIF]);
	return MNL_CB_OK;
}

int netlink_route_oif(struct netlink *nl, const struct ip_prefix *dst)
{
	alignas(struct nlmsghdr) char buf[POLICY_REQUEST_LEN];
	struct default_ctx ctx = { .oif = -ENOENT };
	size_t alen = dst->family == AF_INET ? 4 : 16;
	struct nlmsghdr *nlh = netlink_start(buf, RTM_GETROUTE, 0);
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));

	rtm->rtm_family = (uint8_t)dst->family;
	rtm->rtm_dst_len = (uint8_t)(alen * 8);
	if (!mnl_attr_put_check(nlh, sizeof(buf), RTA_DST, alen, dst->addr))
		return -EMSGSIZE;
	int err = netlink_request(nl, nlh, route_oif_cb, &ctx);
	return err < 0 ? err : ctx.oif;
}
