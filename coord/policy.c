/* The policy file parser: YAML through core/yamlread, every error "file:line:col: what".
 * See policy.h for the format. Hosts and groups must be defined before the rules that use
 * them are read, which YAML order gives for free only if they come first: so rules are
 * kept as written and their names resolved after the whole file is read. */
#include "coord/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/yamlread.h"

static const char *const top_keys[] = { "hosts", "groups", "rules" };
enum { TOP_HOSTS, TOP_GROUPS, TOP_RULES, TOP_N };
static const char *const rule_keys[] = { "from", "to", "proto" };
enum { RULE_FROM, RULE_TO, RULE_PROTO, RULE_N };

enum { PORT_MAX = 65535, GROUP_PREFIX_LEN = 6 /* "group:" */, AUTOGROUP_PREFIX_LEN = 10 /* "autogroup:" */ };

static const char internet_name[] = "autogroup:internet";

/* A name as written in a rule, resolved once the file is read. */
enum { ENTRY_MAX = 256 /* "group:NAME:" and a list of port ranges */ };
struct pending_name {
	char text[ENTRY_MAX];
	yaml_mark_t mark;
};

struct parser {
	struct yamlread r;
	struct policy *p;
	/* rule refs are names until every host and group is known */
	struct pending_name *names; /* one per from/to entry of every rule, in order */
	size_t n_names, names_cap;
	size_t hosts_cap, groups_cap;
};

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.';
}

/* A node or host name: what control_name_valid takes. */
static bool plain_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > CONTROL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!name_char(s[i]))
			return false;
	return true;
}

static bool group_name_ok(const char *s, size_t len)
{
	return len > GROUP_PREFIX_LEN && strncmp(s, "group:", GROUP_PREFIX_LEN) == 0 &&
	       plain_name_ok(s + GROUP_PREFIX_LEN, len - GROUP_PREFIX_LEN);
}

static bool looks_like_address(const char *s)
{
	return strchr(s, ':') || strchr(s, '/') || (s[0] >= '0' && s[0] <= '9' && strchr(s, '.'));
}

static const struct policy_host *find_host(const struct policy *p, const char *name)
{
	for (size_t i = 0; i < p->n_hosts; i++)
		if (strcmp(p->hosts[i].name, name) == 0)
			return &p->hosts[i];
	return NULL;
}

static bool find_group(const struct policy *p, const char *name, size_t *idx)
{
	for (size_t i = 0; i < p->n_groups; i++)
		if (strcmp(p->groups[i].name, name) == 0) {
			*idx = i;
			return true;
		}
	return false;
}

/* An address or prefix with its host bits clear. */
static bool read_prefix(struct yamlread *r, const char *s, yaml_mark_t mark, struct ip_prefix *out)
{
	char q[YAMLREAD_QUOTE_BUF], buf[IP_PREFIX_STR_MAX];

	if (!ip_prefix_parse(s, out)) {
		yamlread_fail(r, mark, "'%s' is not an IP address or prefix", yamlread_quote(s, strlen(s), q));
		return false;
	}
	struct ip_prefix net = ip_prefix_network(out);
	if (memcmp(net.addr, out->addr, sizeof(net.addr)) != 0) {
		yamlread_fail(r, mark, "'%s' has host bits set; did you mean %s?", yamlread_quote(s, strlen(s), q),
			      ip_prefix_format(&net, buf, sizeof(buf)));
		return false;
	}
	return true;
}

/* "tag:NAME", as the registry spells tags (coord/tags.h). */
static bool read_tag(struct yamlread *r, const char *s, size_t len, yaml_mark_t mark, struct policy_ref *ref)
{
	char q[YAMLREAD_QUOTE_BUF];

	if (!tag_valid(s, len)) {
		yamlread_fail(r, mark, "'%s' is not a tag: 'tag:' then 1 to %d of a-z, 0-9 and '-'",
			      yamlread_quote(s, len, q), TAG_NAME_MAX);
		return false;
	}
	ref->kind = POLICY_REF_TAG;
	memcpy(ref->tag, s, len + 1);
	return true;
}

/* A host's value, or a group member: a node name or an address/prefix. Groups and "*" are
 * not allowed there (no nesting: a reader sees every member where the group is); a tag is. */
static bool read_member(struct yamlread *r, const char *what, struct policy_ref *ref)
{
	char q[YAMLREAD_QUOTE_BUF];
	const char *s = yamlread_value(r);
	size_t len = yamlread_len(r);

	memset(ref, 0, sizeof(*ref));
	ref->line = r->ev.start_mark.line + 1;
	ref->col = r->ev.start_mark.column + 1;
	if (strlen(s) != len) {
		yamlread_fail(r, r->ev.start_mark, "%s holds a NUL byte", what);
		return false;
	}
	if (strncmp(s, "group:", GROUP_PREFIX_LEN) == 0 || strcmp(s, "*") == 0) {
		/* one level: a reader sees every member where the group is defined */
		yamlread_fail(r, r->ev.start_mark, "%s '%s': %s", what, yamlread_quote(s, len, q),
			      s[0] == '*' ? "'*' is for rules, not hosts or groups"
					  : "groups do not nest; list its members instead");
		return false;
	}
	if (strncmp(s, "autogroup:", AUTOGROUP_PREFIX_LEN) == 0) {
		yamlread_fail(r, r->ev.start_mark, "%s '%s': autogroups are for rule destinations only", what,
			      yamlread_quote(s, len, q));
		return false;
	}
	if (strncmp(s, "tag:", TAG_PREFIX_LEN) == 0)
		return read_tag(r, s, len, r->ev.start_mark, ref);
	if (looks_like_address(s)) {
		ref->kind = POLICY_REF_PREFIX;
		return read_prefix(r, s, r->ev.start_mark, &ref->prefix);
	}
	if (!plain_name_ok(s, len)) {
		yamlread_fail(r, r->ev.start_mark,
			      "%s '%s' must be a node name (1 to %d letters, digits, '-', '_' or '.') or an address",
			      what, yamlread_quote(s, len, q), CONTROL_NAME_MAX);
		return false;
	}
	ref->kind = POLICY_REF_NODE;
	memcpy(ref->node, s, len + 1);
	return true;
}

/* Reads the next key of a mapping whose keys are the user's names (hosts, groups): false on
 * error, *done at the end. */
static bool user_key(struct yamlread *r, const char *section, bool *done)
{
	*done = false;
	if (!yamlread_next(r))
		return false;
	if (r->ev.type == YAML_MAPPING_END_EVENT) {
		*done = true;
		return true;
	}
	if (r->ev.type != YAML_SCALAR_EVENT || strlen(yamlread_value(r)) != yamlread_len(r)) {
		yamlread_fail(r, r->ev.start_mark, "expected a name in '%s', found %s", section, yamlread_kind(r));
		return false;
	}
	return true;
}

static bool mapping_start(struct yamlread *r, const char *section, bool *empty)
{
	if (!yamlread_next(r))
		return false;
	*empty = yamlread_is_null(r);
	if (*empty)
		return true;
	if (r->ev.type != YAML_MAPPING_START_EVENT) {
		yamlread_fail(r, r->ev.start_mark, "'%s' must be a mapping (name: value lines), not %s", section,
			      yamlread_kind(r));
		return false;
	}
	return true;
}

/* Makes room for one more element of an array that grows by doubling. */
static bool grow(void **arr, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 16;
	void *a = realloc(*arr, ncap * elem);
	if (!a)
		return false;
	memset((char *)a + *cap * elem, 0, (ncap - *cap) * elem);
	*arr = a;
	*cap = ncap;
	return true;
}

static bool parse_hosts(struct parser *ps)
{
	struct yamlread *r = &ps->r;
	struct policy *p = ps->p;
	char q[YAMLREAD_QUOTE_BUF];
	bool empty, done;

	if (!mapping_start(r, "hosts", &empty) || empty)
		return !r->failed;
	for (;;) {
		if (!user_key(r, "hosts", &done))
			return false;
		if (done)
			return true;
		const char *s = yamlread_value(r);
		size_t len = yamlread_len(r);
		if (!plain_name_ok(s, len) || looks_like_address(s)) {
			yamlread_fail(r, r->ev.start_mark,
				      "host name '%s' must be 1 to %d letters, digits, '-', '_' or '.'",
				      yamlread_quote(s, len, q), CONTROL_NAME_MAX);
			return false;
		}
		if (find_host(p, s)) {
			yamlread_fail(r, r->ev.start_mark, "host '%s' is defined twice", s);
			return false;
		}
		if (p->n_hosts == POLICY_MAX_HOSTS) {
			yamlread_fail(r, r->ev.start_mark, "too many hosts (at most %d)", POLICY_MAX_HOSTS);
			return false;
		}
		if (!grow((void **)&p->hosts, p->n_hosts, &ps->hosts_cap, sizeof(*p->hosts))) {
			yamlread_fail(r, r->ev.start_mark, "out of memory");
			return false;
		}
		struct policy_host *h = &p->hosts[p->n_hosts];
		memcpy(h->name, s, len + 1);
		char key[POLICY_NAME_MAX + 1];
		memcpy(key, s, len + 1);
		if (!yamlread_scalar(r, key) || !read_member(r, "host value", &h->ref))
			return false;
		p->n_hosts++;
	}
}

static bool add_member(struct yamlread *r, const char *key, void *ctx)
{
	struct policy_group *g = ctx;

	(void)key;
	if (g->n_members == POLICY_MAX_MEMBERS) {
		yamlread_fail(r, r->ev.start_mark, "group '%s' has too many members (at most %d)", g->name,
			      POLICY_MAX_MEMBERS);
		return false;
	}
	/* a power of two count is a full array: double it */
	size_t cap = g->n_members && (g->n_members & (g->n_members - 1)) == 0 ? g->n_members : 0;
	if (g->n_members == 0 || cap) {
		size_t ncap = cap ? cap * 2 : 1;
		struct policy_ref *m = realloc(g->members, ncap * sizeof(*m));
		if (!m) {
			yamlread_fail(r, r->ev.start_mark, "out of memory");
			return false;
		}
		g->members = m;
	}
	return read_member(r, "group member", &g->members[g->n_members++]);
}

static bool parse_groups(struct parser *ps)
{
	struct yamlread *r = &ps->r;
	struct policy *p = ps->p;
	char q[YAMLREAD_QUOTE_BUF];
	bool empty, done;
	size_t idx;

	if (!mapping_start(r, "groups", &empty) || empty)
		return !r->failed;
	for (;;) {
		if (!user_key(r, "groups", &done))
			return false;
		if (done)
			return true;
		const char *s = yamlread_value(r);
		size_t len = yamlread_len(r);
		if (!group_name_ok(s, len)) {
			yamlread_fail(r, r->ev.start_mark,
				      "group name '%s' must be 'group:' then 1 to %d letters, digits, '-', '_' or '.'",
				      yamlread_quote(s, len, q), CONTROL_NAME_MAX);
			return false;
		}
		if (find_group(p, s, &idx)) {
			yamlread_fail(r, r->ev.start_mark, "group '%s' is defined twice", s);
			return false;
		}
		if (p->n_groups == POLICY_MAX_GROUPS) {
			yamlread_fail(r, r->ev.start_mark, "too many groups (at most %d)", POLICY_MAX_GROUPS);
			return false;
		}
		if (!grow((void **)&p->groups, p->n_groups, &ps->groups_cap, sizeof(*p->groups))) {
			yamlread_fail(r, r->ev.start_mark, "out of memory");
			return false;
		}
		struct policy_group *g = &p->groups[p->n_groups++];
		memcpy(g->name, s, len + 1);
		char key[POLICY_NAME_MAX + 1];
		memcpy(key, s, len + 1);
		if (!yamlread_list(r, key, "node name", "node names", add_member, g))
			return false;
	}
}

/* ---------------------------------------------------------------- rules */

struct ref_sink {
	struct parser *ps;
	bool dest;
	size_t n;
};

static bool keep_name(struct yamlread *r, const char *key, void *ctx)
{
	struct ref_sink *sink = ctx;
	struct parser *ps = sink->ps;

	if (sink->n == POLICY_MAX_REFS) {
		yamlread_fail(r, r->ev.start_mark, "'%s' has too many entries (at most %d)", key, POLICY_MAX_REFS);
		return false;
	}
	if (yamlread_len(r) >= ENTRY_MAX || strlen(yamlread_value(r)) != yamlread_len(r)) {
		yamlread_fail(r, r->ev.start_mark, "'%s' entry is longer than %d bytes or holds a NUL byte", key,
			      ENTRY_MAX - 1);
		return false;
	}
	if (ps->n_names == ps->names_cap) {
		size_t cap = ps->names_cap ? ps->names_cap * 2 : 64;
		struct pending_name *n = realloc(ps->names, cap * sizeof(*n));
		if (!n) {
			yamlread_fail(r, r->ev.start_mark, "out of memory");
			return false;
		}
		ps->names = n;
		ps->names_cap = cap;
	}
	struct pending_name *pn = &ps->names[ps->n_names++];
	memcpy(pn->text, yamlread_value(r), yamlread_len(r) + 1);
	pn->mark = r->ev.start_mark;
	sink->n++;
	return true;
}

static bool parse_proto(struct yamlread *r, uint8_t *out)
{
	static const struct {
		const char *name;
		uint8_t proto;
	} protos[] = { { "any", FILTER_PROTO_ANY }, { "tcp", FILTER_PROTO_TCP }, { "udp", FILTER_PROTO_UDP },
		       { "icmp", FILTER_PROTO_ICMP } };
	char q[YAMLREAD_QUOTE_BUF];

	if (!yamlread_scalar(r, "proto"))
		return false;
	for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
		if (strcmp(yamlread_value(r), protos[i].name) == 0) {
			*out = protos[i].proto;
			return true;
		}
	yamlread_fail(r, r->ev.start_mark, "'proto': '%s' is not one of tcp, udp, icmp, any",
		      yamlread_quote(yamlread_value(r), yamlread_len(r), q));
	return false;
}

/* A rule's names wait in ps->names; the rule records where its slice starts. */
struct raw_rule {
	size_t from_at, n_from, to_at, n_to;
	uint8_t proto;
	yaml_mark_t start, proto_mark;
};

static bool parse_rule(struct parser *ps, struct raw_rule *rr)
{
	struct yamlread *r = &ps->r;
	size_t seen[RULE_N] = { 0 }, idx;
	bool done;

	rr->start = r->ev.start_mark;
	rr->proto = FILTER_PROTO_ANY;
	rr->proto_mark = r->ev.start_mark;
	for (;;) {
		if (!yamlread_key(r, rule_keys, RULE_N, seen, "rule ", &idx, &done))
			return false;
		if (done)
			break;
		struct ref_sink sink = { .ps = ps, .dest = idx == RULE_TO };
		switch (idx) {
		case RULE_FROM:
		case RULE_TO:
			if (idx == RULE_FROM)
				rr->from_at = ps->n_names;
			else
				rr->to_at = ps->n_names;
			if (!yamlread_list(r, rule_keys[idx], idx == RULE_FROM ? "source" : "destination",
					   idx == RULE_FROM ? "sources" : "destinations", keep_name, &sink))
				return false;
			if (idx == RULE_FROM)
				rr->n_from = sink.n;
			else
				rr->n_to = sink.n;
			break;
		case RULE_PROTO:
			rr->proto_mark = r->ev.start_mark;
			if (!parse_proto(r, &rr->proto))
				return false;
			rr->proto_mark = r->ev.start_mark;
			break;
		}
	}
	for (size_t k = 0; k < 2; k++)
		if (!seen[k]) {
			yamlread_fail(r, rr->start, "rule is missing required key '%s'", rule_keys[k]);
			return false;
		}
	return true;
}

/* Resolves a source (or a destination's address part) written as s. */
static bool resolve_ref(struct parser *ps, const char *s, yaml_mark_t mark, bool dest, struct policy_ref *ref)
{
	struct yamlread *r = &ps->r;
	char q[YAMLREAD_QUOTE_BUF];
	const struct policy_host *h;
	size_t len = strlen(s);

	memset(ref, 0, sizeof(*ref));
	ref->line = mark.line + 1;
	ref->col = mark.column + 1;
	if (strcmp(s, "*") == 0) {
		ref->kind = POLICY_REF_ALL;
		return true;
	}
	if (strncmp(s, "group:", GROUP_PREFIX_LEN) == 0) {
		if (!find_group(ps->p, s, &ref->group)) {
			yamlread_fail(r, mark, "unknown group '%s' (define it under 'groups')", yamlread_quote(s, len, q));
			return false;
		}
		ref->kind = POLICY_REF_GROUP;
		return true;
	}
	if (strcmp(s, internet_name) == 0) {
		if (!dest) {
			yamlread_fail(r, mark, "'%s' is a destination only (the internet does not send from the mesh)",
				      internet_name);
			return false;
		}
		ref->kind = POLICY_REF_INTERNET;
		return true;
	}
	if (strncmp(s, "autogroup:", AUTOGROUP_PREFIX_LEN) == 0) {
		yamlread_fail(r, mark, "unknown autogroup '%s' (the one there is: %s)", yamlread_quote(s, len, q),
			      internet_name);
		return false;
	}
	if (strncmp(s, "tag:", TAG_PREFIX_LEN) == 0)
		return read_tag(r, s, len, mark, ref);
	if ((h = find_host(ps->p, s))) {
		*ref = h->ref;
		ref->line = mark.line + 1;
		ref->col = mark.column + 1;
		return true;
	}
	if (looks_like_address(s)) {
		ref->kind = POLICY_REF_PREFIX;
		return read_prefix(r, s, mark, &ref->prefix);
	}
	if (!plain_name_ok(s, len)) {
		yamlread_fail(r, mark,
			      "%s '%s' is not '*', a host, a group:NAME, a tag:NAME, a node name or an address",
			      dest ? "destination" : "source", yamlread_quote(s, len, q));
		return false;
	}
	ref->kind = POLICY_REF_NODE;
	memcpy(ref->node, s, len + 1);
	return true;
}

static bool parse_port(const char *s, size_t len, uint16_t *out)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || (s[0] == '0' && len > 1))
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > PORT_MAX)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* "*", "80", "8000-8100", "80,443,8000-8100". */
static bool parse_ports(struct yamlread *r, const char *s, yaml_mark_t mark, struct policy_dest *d)
{
	char q[YAMLREAD_QUOTE_BUF];

	if (strcmp(s, "*") == 0) {
		d->ports[0] = (struct policy_ports){ 0, PORT_MAX };
		d->n_ports = 1;
		return true;
	}
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *dash = memchr(p, '-', len);
		struct policy_ports pr;
		bool ok = dash ? parse_port(p, (size_t)(dash - p), &pr.lo) &&
					 parse_port(dash + 1, len - (size_t)(dash - p) - 1, &pr.hi) && pr.lo <= pr.hi
			       : parse_port(p, len, &pr.lo);
		if (!dash)
			pr.hi = pr.lo;
		if (!ok) {
			char q2[YAMLREAD_QUOTE_BUF];
			yamlread_fail(r, mark, "ports '%s': '%s' is not a port (0-65535) or a range LOW-HIGH",
				      yamlread_quote(s, strlen(s), q), yamlread_quote(p, len, q2));
			return false;
		}
		if (d->n_ports == POLICY_MAX_PORT_RANGES) {
			yamlread_fail(r, mark, "too many port ranges in '%s' (at most %d)", yamlread_quote(s, strlen(s), q),
				      POLICY_MAX_PORT_RANGES);
			return false;
		}
		d->ports[d->n_ports++] = pr;
		if (!end)
			return true;
		p = end + 1;
	}
}

static bool resolve_dest(struct parser *ps, const struct pending_name *pn, struct policy_dest *d)
{
	struct yamlread *r = &ps->r;
	char q[YAMLREAD_QUOTE_BUF], addr[sizeof(pn->text)];
	const char *s = pn->text, *colon;

	memset(d, 0, sizeof(*d));
	if (s[0] == '[') { /* [IPv6]:ports */
		const char *close = strchr(s, ']');
		colon = close && close[1] == ':' ? close + 1 : NULL;
		if (colon)
			snprintf(addr, sizeof(addr), "%.*s", (int)(close - s - 1), s + 1);
	} else {
		colon = strrchr(s, ':');
		/* "group:x" (or "tag:x", "autogroup:x") alone has no ports: its colon is the name's */
		if (colon && ((strncmp(s, "group:", GROUP_PREFIX_LEN) == 0 && colon == s + GROUP_PREFIX_LEN - 1) ||
			      (strncmp(s, "tag:", TAG_PREFIX_LEN) == 0 && colon == s + TAG_PREFIX_LEN - 1) ||
			      (strncmp(s, "autogroup:", AUTOGROUP_PREFIX_LEN) == 0 &&
			       colon == s + AUTOGROUP_PREFIX_LEN - 1)))
			colon = NULL;
		if (colon)
			snprintf(addr, sizeof(addr), "%.*s", (int)(colon - s), s);
	}
	if (!colon || colon[1] == '\0') {
		yamlread_fail(r, pn->mark, "destination '%s' needs ports: NAME:PORTS, e.g. '%s:*' or '%s:80,443'",
			      yamlread_quote(s, strlen(s), q), "nas", "nas");
		return false;
	}
	return resolve_ref(ps, addr, pn->mark, true, &d->ref) && parse_ports(r, colon + 1, pn->mark, d);
}

static bool finish_rule(struct parser *ps, const struct raw_rule *rr)
{
	struct yamlread *r = &ps->r;
	struct policy_rule *rule = &ps->p->rules[ps->p->n_rules];

	memset(rule, 0, sizeof(*rule));
	rule->proto = rr->proto;
	rule->line = rr->start.line + 1;
	rule->from = calloc(rr->n_from, sizeof(*rule->from));
	rule->to = calloc(rr->n_to, sizeof(*rule->to));
	ps->p->n_rules++; /* owned now: policy_free frees what it holds */
	if (!rule->from || !rule->to) {
		yamlread_fail(r, rr->start, "out of memory");
		return false;
	}
	for (size_t i = 0; i < rr->n_from; i++) {
		const struct pending_name *pn = &ps->names[rr->from_at + i];
		if (!resolve_ref(ps, pn->text, pn->mark, false, &rule->from[i]))
			return false;
		rule->n_from++;
	}
	for (size_t i = 0; i < rr->n_to; i++) {
		struct policy_dest *d = &rule->to[i];
		if (!resolve_dest(ps, &ps->names[rr->to_at + i], d))
			return false;
		rule->n_to++;
		bool all = d->n_ports == 1 && d->ports[0].lo == 0 && d->ports[0].hi == PORT_MAX;
		if (rule->proto == FILTER_PROTO_ICMP && !all) {
			yamlread_fail(r, ps->names[rr->to_at + i].mark,
				      "ICMP has no ports: write the destination with ':*' for proto icmp");
			return false;
		}
	}
	return true;
}

static bool parse_rules(struct parser *ps, struct raw_rule **raw, size_t *n_raw)
{
	struct yamlread *r = &ps->r;
	size_t cap = 0;
	bool has_items;
	int item;

	if (!yamlread_mapping_list_begin(r, "rules", "rules", &has_items))
		return false;
	if (!has_items)
		return true;
	while ((item = yamlread_mapping_list_next(r, "each rule must be a mapping ({from: ..., to: ...})")) > 0) {
		if (*n_raw == POLICY_MAX_RULES) {
			yamlread_fail(r, r->ev.start_mark, "too many rules (at most %d)", POLICY_MAX_RULES);
			return false;
		}
		if (*n_raw == cap) {
			cap = cap ? cap * 2 : 16;
			struct raw_rule *n = realloc(*raw, cap * sizeof(*n));
			if (!n) {
				yamlread_fail(r, r->ev.start_mark, "out of memory");
				return false;
			}
			*raw = n;
		}
		memset(&(*raw)[*n_raw], 0, sizeof(**raw));
		if (!parse_rule(ps, &(*raw)[(*n_raw)++]))
			return false;
	}
	return item == 0;
}

/* ---------------------------------------------------------------- the file */

void policy_free(struct policy *p)
{
	for (size_t i = 0; i < p->n_groups; i++)
		free(p->groups[i].members);
	for (size_t i = 0; i < p->n_rules; i++) {
		free(p->rules[i].from);
		free(p->rules[i].to);
	}
	free(p->hosts);
	free(p->groups);
	free(p->rules);
	memset(p, 0, sizeof(*p));
}

bool policy_parse(struct policy *p, const char *source, const char *text, size_t len, char *err, size_t err_len)
{
	struct parser ps = { .p = p };
	struct raw_rule *raw = NULL;
	size_t n_raw = 0, seen[TOP_N] = { 0 }, idx;
	yaml_mark_t start;
	bool done, ok = false;

	memset(p, 0, sizeof(*p));
	if (!yamlread_init(&ps.r, source, text, len, err, err_len))
		return false;
	if (!yamlread_begin(&ps.r, "policy", "rules: [...]", &start))
		goto out;
	for (;;) {
		if (!yamlread_key(&ps.r, top_keys, TOP_N, seen, "policy ", &idx, &done))
			goto out;
		if (done)
			break;
		bool k_ok = idx == TOP_HOSTS ? parse_hosts(&ps) : idx == TOP_GROUPS ? parse_groups(&ps)
										     : parse_rules(&ps, &raw, &n_raw);
		if (!k_ok)
			goto out;
	}
	if (!seen[TOP_RULES]) {
		yamlread_fail(&ps.r, start, "the policy has no 'rules' (write 'rules: []' to allow nothing)");
		goto out;
	}
	if (!yamlread_end(&ps.r, "policy"))
		goto out;
	p->rules = calloc(n_raw ? n_raw : 1, sizeof(*p->rules));
	if (!p->rules) {
		snprintf(err, err_len, "%s: out of memory", source);
		goto out;
	}
	ok = true;
	for (size_t i = 0; ok && i < n_raw; i++)
		ok = finish_rule(&ps, &raw[i]);
out:
	yamlread_cleanup(&ps.r);
	free(ps.names);
	free(raw);
	if (!ok)
		policy_free(p);
	return ok;
}

bool policy_load(struct policy *p, const char *path, char *err, size_t err_len)
{
	char *text = NULL;
	size_t len = 0;
	struct stat st;

	memset(p, 0, sizeof(*p));
	if (!yamlread_load_file(path, POLICY_FILE_MAX, &text, &len, &st, err, err_len))
		return false;
	bool ok = policy_parse(p, path, text, len, err, err_len);
	free(text);
	return ok;
}
