/* Access rules on the coordinator: the policy file (YAML), parsed strictly, and compiled per
 * node into the rules that node enforces (core/filter.h) as a destination.
 *
 *   hosts:                       # optional: names for nodes and overlay addresses
 *     nas: home                  #   a node name
 *     printers: 100.64.0.0/28    #   an address or prefix
 *   groups:                      # optional: sets of node names (or hosts), "group:NAME"
 *     group:family: [alice-laptop, bob-phone]
 *   rules:                       # required (may be empty: nobody reaches anybody)
 *     - {from: [group:family], to: ["nas:80,443"], proto: tcp}
 *     - {from: ["*"], to: ["*:*"], proto: icmp}
 *
 * A source is "*", a host, a group, a node name or an address/prefix; a destination is one
 * of those, then ":" and ports: "*", a port, a range "8000-8100", or a comma list of them
 * (an IPv6 literal in brackets: "[fd00::1]:22"). proto: tcp, udp, icmp or any (default);
 * icmp takes "*" only. A rule allows; anything no rule allows is dropped at its destination,
 * except replies to connections the destination itself opened.
 *
 * "tag:NAME" names every node the registry gives that tag (meshcoord nodes tag), as a
 * source, a destination, a host's value or a group member. "autogroup:internet" as a
 * destination is what lies outside the mesh and outside every approved subnet route:
 * it is compiled into the rules of exit nodes. A prefix destination inside a node's
 * approved subnet route is compiled into that router's rules.
 *
 * Names that are neither hosts nor groups are node names; the registry may not know them
 * yet (a node that joins later), so the parser accepts them and `meshcoord policy check`
 * warns about them. */
#ifndef MESHCOORD_POLICY_H
#define MESHCOORD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/filter.h"
#include "core/ipaddr.h"
#include "coord/tags.h"

enum {
	POLICY_FILE_MAX = 1 << 20,   /* 1 MiB of YAML is thousands of rules: bounds the read */
	POLICY_MAX_HOSTS = 4096,
	POLICY_MAX_GROUPS = 1024,
	POLICY_MAX_MEMBERS = 4096,   /* per group */
	POLICY_MAX_RULES = 4096,
	POLICY_MAX_REFS = 256,       /* sources or destinations per rule */
	POLICY_MAX_PORT_RANGES = 32, /* per destination */
	POLICY_NAME_MAX = CONTROL_NAME_MAX + 6, /* "group:" + a node name */
	POLICY_DIGEST_LEN = 16, /* BLAKE2b of a node's rule set: tells "changed" from "same" */
};

enum policy_ref_kind {
	POLICY_REF_ALL,    /* "*" */
	POLICY_REF_NODE,   /* a node name (directly or through a host) */
	POLICY_REF_PREFIX, /* an address or prefix (directly or through a host) */
	POLICY_REF_GROUP,  /* index into groups */
	POLICY_REF_TAG,    /* "tag:NAME": every node the registry gives that tag */
	POLICY_REF_INTERNET, /* "autogroup:internet" (destinations only): through exit nodes */
};

struct policy_ref {
	enum policy_ref_kind kind;
	char node[CONTROL_NAME_MAX + 1];
	char tag[TAG_MAX + 1];
	struct ip_prefix prefix;
	size_t group;
	size_t line, col; /* where it was written, for warnings */
};

struct policy_ports {
	uint16_t lo, hi;
};

struct policy_dest {
	struct policy_ref ref;
	struct policy_ports ports[POLICY_MAX_PORT_RANGES];
	size_t n_ports;
};

struct policy_rule {
	struct policy_ref *from;
	size_t n_from;
	struct policy_dest *to;
	size_t n_to;
	uint8_t proto; /* enum filter_proto */
	size_t line;
};

struct policy_host {
	char name[POLICY_NAME_MAX + 1];
	struct policy_ref ref; /* NODE or PREFIX */
};

struct policy_group {
	char name[POLICY_NAME_MAX + 1]; /* with its "group:" */
	struct policy_ref *members;     /* NODE or PREFIX */
	size_t n_members;
};

struct policy {
	struct policy_host *hosts;
	size_t n_hosts;
	struct policy_group *groups;
	size_t n_groups;
	struct policy_rule *rules;
	size_t n_rules;
};

/* Parses YAML from memory (the fuzz target calls it); err gets "SOURCE:LINE:COL: what".
 * On failure *p is empty (nothing to free). */
bool policy_parse(struct policy *p, const char *source, const char *text, size_t len, char *err, size_t err_len);
bool policy_load(struct policy *p, const char *path, char *err, size_t err_len);
void policy_free(struct policy *p);

/* A node as the compiler sees it. */
struct policy_node {
	const char *name;
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	const char (*tags)[TAG_MAX + 1]; /* the registry's tags, n_tags of them */
	size_t n_tags;
	/* Its routes in effect (advertised and approved): subnets it forwards to, and
	 * 0.0.0.0/0 or ::/0 when it is an exit node. */
	const struct control_route *routes;
	size_t n_routes;
};

enum {
	/* Destination prefixes one policy destination can name on one node: its two
	 * addresses, its routes, and the internet cut around the overlay and every subnet
	 * route (about as many prefixes as the cut-out prefixes have bits). */
	POLICY_MAX_DESTS = 1024,
};

/* The rules node `self` enforces: every (source prefix, destination prefix, proto, port
 * range) that some rule allows toward it, without duplicates, in policy order. A
 * destination prefix is one of self's addresses, or, for a node with routes in effect,
 * the part of a destination that lies inside a subnet it routes (the router enforces it),
 * or for an exit node the part outside the mesh and every node's subnet routes
 * ("autogroup:internet", "*", or a literal prefix there). *out is malloc'd
 * (NULL when there are none). False when out of memory or over FILTER_MAX_RULES (err says
 * which node and how many). */
bool policy_compile(const struct policy *p, const struct policy_node *nodes, size_t n_nodes, size_t self,
		    struct filter_rule **out, size_t *n_out, char *err, size_t err_len);

/* Compiles for every node: false with err naming the first node whose rules do not fit. */
bool policy_check_nodes(const struct policy *p, const struct policy_node *nodes, size_t n_nodes, char *err,
			size_t err_len);

/* Calls warn once for every node name the policy uses that is not in nodes, and for
 * every tag no node has (ref->kind tells which). */
void policy_unknown_nodes(const struct policy *p, const struct policy_node *nodes, size_t n_nodes,
			  void (*warn)(const struct policy_ref *ref, void *ctx), void *ctx);

#endif
