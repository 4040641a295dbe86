/* meshcoord satellite add|list|remove|config: stock WireGuard devices (phones, laptops with
 * only the WireGuard app) that join the mesh through a gateway node. The registry keeps the
 * satellite's public key, addresses and preshared key; the running server sees the commit
 * (db_changed), pushes the gateway its new list (CONTROL_MSG_SATELLITES) and every node the
 * gateway's new routes within a tick. The device is configured from the wg-quick file printed
 * here (and as a QR code with --qr). */
#include "coord/admin.h"
#include "coord/admin_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/dns.h"
#include "core/keys.h"

enum {
	SAT_EXIT_FAIL = 1,
	SAT_ROWS_MAX = 65536,   /* rows read for a listing: far beyond any network */
	SAT_KEEPALIVE_S = 25,   /* PersistentKeepalive: under every common NAT mapping timeout */
	/* The mesh's MTU (meshd's CONFIG_DEFAULT_MTU): the gateway forwards a satellite's packets
	 * into the mesh, where a relayed path has room for no more; wg-quick's own 1420 would
	 * have every full-size packet split there. */
	SAT_MTU = 1384,
	SAT_CONFIG_MAX = 2048,  /* the wg-quick file: a dozen short lines */
	SAT_QR_PATH_MAX = PATH_MAX,
};

static const char satellite_help[] =
	"Usage: meshcoord satellite ACTION [-c FILE]\n"
	"\n"
	"A satellite is a device that runs only a stock WireGuard client (a phone, a tablet).\n"
	"It talks WireGuard to one gateway node, an ordinary meshd node with a UDP port the\n"
	"device can reach; the gateway routes its addresses into the mesh.\n"
	"\n"
	"Actions:\n"
	"  add NAME --via GATEWAY [--public-key KEY] [--endpoint HOST:PORT] [--tag TAG]... [--qr]\n"
	"        register NAME (a-z, 0-9 and '-') behind the node GATEWAY and print its\n"
	"        wg-quick configuration. Without --public-key a key pair is made here and the\n"
	"        private key is printed this once (it is not stored); with it (the key the\n"
	"        WireGuard app made on the device: best) the file has a placeholder for the\n"
	"        private key. --endpoint: the gateway's public address and UDP port as the\n"
	"        device sees them (default: the gateway's reported public candidate). --tag:\n"
	"        a tag:NAME for the access rules. --qr: also as a QR code (needs qrencode)\n"
	"  list [--json]\n"
	"        show every satellite: NAME, GATEWAY, ADDRESSES, KEY, TAGS\n"
	"  config NAME [--qr]\n"
	"        print the configuration again: only for a satellite added with --public-key\n"
	"  remove NAME\n"
	"        delete it: the gateway drops it within about a second\n"
	"\n"
	"-c FILE names the coordinator's config (default " COORDCONF_DEFAULT_PATH ").\n";

/* What satellite takes: the add options, --json for list and --qr for add and config. */
#define SATELLITE_OPTIONS                                                                          \
	(ADMIN_OPT(ADMIN_OPT_VIA) | ADMIN_OPT(ADMIN_OPT_PUBLIC_KEY) | ADMIN_OPT(ADMIN_OPT_ENDPOINT) | \
	 ADMIN_OPT(ADMIN_OPT_TAG) | ADMIN_OPT(ADMIN_OPT_JSON) | ADMIN_OPT(ADMIN_OPT_QR))

/* ---------------------------------------------------------------- the gateway's endpoint */

/* An address a device on the Internet can send to: not private, shared (CGNAT), loopback,
 * link-local or unique-local. */
static bool endpoint_public(const struct control_endpoint *e)
{
	const uint8_t *a = e->addr;

	if (e->port == 0)
		return false;
	if (e->family == 4)
		return !(a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
			 (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
			 (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224);
	if (e->family == 6)
		return (a[0] & 0xe0) == 0x20; /* global unicast, 2000::/3 */
	return false;
}

static void endpoint_format(const struct control_endpoint *e, char *out, size_t cap)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(e->family == 4 ? AF_INET : AF_INET6, e->addr, addr, sizeof(addr));
	snprintf(out, cap, e->family == 4 ? "%s:%u" : "[%s]:%u", addr, (unsigned int)e->port);
}

struct node_find {
	const char *name;
	struct db_node node;
	bool found;
};

static void node_match(const struct db_node *n, void *arg)
{
	struct node_find *f = arg;

	if (!f->found && strcmp(n->name, f->name) == 0) {
		f->node = *n;
		f->found = true;
	}
}

/* The gateway's record; false with one line printed. */
static bool gateway_find(struct db *db, const char *name, struct db_node *out)
{
	struct node_find f = { .name = name };

	if (!db_nodes_list(db, node_match, &f)) {
		fprintf(stderr, "meshcoord satellite: cannot read the registry\n");
		return false;
	}
	if (!f.found) {
		fprintf(stderr, "meshcoord satellite: no node named '%s' (see 'meshcoord nodes list')\n", name);
		return false;
	}
	*out = f.node;
	return true;
}

/* The endpoint the device dials: --endpoint as stored, else the gateway's first public IPv4
 * candidate, else its first public IPv6 one. False with one line printed when none. */
static bool endpoint_pick(const struct db_satellite *sat, const struct db_node *gw, char *out, size_t cap)
{
	if (sat->endpoint[0]) {
		snprintf(out, cap, "%s", sat->endpoint);
		return true;
	}
	bool behind_nat = false;
	for (size_t i = 0; i < gw->n_endpoints; i++)
		behind_nat |= gw->endpoints[i].family == 4 && !endpoint_public(&gw->endpoints[i]);
	for (int fam = 4; fam <= 6; fam += 2)
		for (size_t i = 0; i < gw->n_endpoints; i++)
			if (gw->endpoints[i].family == fam && endpoint_public(&gw->endpoints[i])) {
				endpoint_format(&gw->endpoints[i], out, cap);
				/* A NAT's mapping answers only peers the gateway sent to first, unless
				 * the router forwards the port: worth one line, not a refusal. */
				if (behind_nat && fam == 4)
					fprintf(stderr, "note: gateway %s is behind a NAT; %s is its NAT's mapping as STUN saw "
							"it: the device reaches it only if the router forwards that UDP port "
							"to the gateway (else give --endpoint)\n", gw->name, out);
				return true;
			}
	fprintf(stderr, "meshcoord satellite: gateway %s has reported no public address; give --endpoint HOST:PORT "
			"(its public address and the UDP port that reaches its meshd)\n", gw->name);
	return false;
}

/* HOST:PORT, [V6]:PORT; the port 1..65535. One spelling check, not a resolution. */
static bool endpoint_arg_ok(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;

	/* A host name or an address: letters, digits and ". - : [ ]" only, so the value is safe
	 * in the wg-quick file and in the JSON listing as it stands. */
	if (!colon || colon == s || strlen(s) >= DB_SATELLITE_ENDPOINT_MAX ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") != strlen(s))
		return false;
	if (s[0] == '[' && colon[-1] != ']')
		return false;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	return errno == 0 && *end == '\0' && colon[1] >= '0' && colon[1] <= '9' && port >= 1 && port <= 65535;
}

/* ---------------------------------------------------------------- the wg-quick file */

static void overlay_text(struct db *db, char *v4, size_t v4_cap, char *v6, size_t v6_cap)
{
	uint8_t prefix[16];
	char a[INET6_ADDRSTRLEN];

	db_network_ipv6_prefix(db, prefix);
	memset(prefix + DB_OVERLAY_IPV6_BITS / 8, 0, 16 - DB_OVERLAY_IPV6_BITS / 8);
	inet_ntop(AF_INET6, prefix, a, sizeof(a));
	snprintf(v4, v4_cap, "100.64.0.0/%d", DB_OVERLAY_IPV4_BITS);
	snprintf(v6, v6_cap, "%s/%d", a, DB_OVERLAY_IPV6_BITS);
}

/* The file into out; false when the endpoint is unknown (one line printed). */
static bool config_build(struct db *db, const struct coord_config *cfg, const struct db_satellite *sat,
			 const uint8_t *private_key, char *out, size_t cap)
{
	struct db_node gw;
	char endpoint[DB_SATELLITE_ENDPOINT_MAX], key[KEY_BASE64_LEN + 1], v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN];
	char net4[32], net6[INET6_ADDRSTRLEN + 8], priv_line[96], psk_line[96] = "", dns_line[CONTROL_DOMAIN_MAX + 64] = "";

	if (!gateway_find(db, sat->gateway_name, &gw) || !endpoint_pick(sat, &gw, endpoint, sizeof(endpoint)))
		return false;
	inet_ntop(AF_INET, sat->ipv4, v4, sizeof(v4));
	inet_ntop(AF_INET6, sat->ipv6, v6, sizeof(v6));
	overlay_text(db, net4, sizeof(net4), net6, sizeof(net6));
	if (private_key) {
		key_to_base64(key, private_key);
		snprintf(priv_line, sizeof(priv_line), "PrivateKey = %s\n", key);
	} else {
		snprintf(priv_line, sizeof(priv_line), "# PrivateKey = (the private key made on the device; it stays there)\n");
	}
	if (sat->has_psk) {
		key_to_base64(key, sat->psk);
		snprintf(psk_line, sizeof(psk_line), "PresharedKey = %s\n", key);
	}
	if (cfg && cfg->dns_domain[0])
		snprintf(dns_line, sizeof(dns_line), "DNS = %u.%u.%u.%u, %s\n", DNS_MESH_SERVICE_IPV4 >> 24,
			 DNS_MESH_SERVICE_IPV4 >> 16 & 0xff, DNS_MESH_SERVICE_IPV4 >> 8 & 0xff, DNS_MESH_SERVICE_IPV4 & 0xff,
			 cfg->dns_domain);
	key_to_base64(key, gw.node_key);
	int n = snprintf(out, cap,
			 "# meshd satellite %s via gateway %s (meshcoord satellite add)\n"
			 "[Interface]\n"
			 "%s"
			 "Address = %s/32, %s/128\n"
			 "MTU = %d\n"
			 "%s"
			 "\n"
			 "[Peer]\n"
			 "PublicKey = %s\n"
			 "%s"
			 "Endpoint = %s\n"
			 "AllowedIPs = %s, %s\n"
			 "PersistentKeepalive = %d\n",
			 sat->name, sat->gateway_name, priv_line, v4, v6, SAT_MTU, dns_line, key, psk_line, endpoint, net4, net6,
			 SAT_KEEPALIVE_S);
	sodium_memzero(priv_line, sizeof(priv_line));
	sodium_memzero(psk_line, sizeof(psk_line));
	sodium_memzero(key, sizeof(key));
	return n > 0 && (size_t)n < cap;
}

/* The qrencode program on PATH, into out; false if there is none. */
static bool qrencode_find(char *out, size_t cap)
{
	const char *path = getenv("PATH");
	struct stat st;

	if (!path || !*path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if (len > 0 && (size_t)snprintf(out, cap, "%.*s/qrencode", (int)len, path) < cap && stat(out, &st) == 0 &&
		    S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return true;
		path += len + (path[len] == ':');
	}
	return false;
}

/* The file as a QR code on the terminal: qrencode -t ansiutf8 reads it from a pipe. */
static bool qr_print(const char *text)
{
	char prog[SAT_QR_PATH_MAX], cmd[SAT_QR_PATH_MAX + 32];

	if (!qrencode_find(prog, sizeof(prog))) {
		fprintf(stderr, "meshcoord satellite: --qr needs the qrencode program (Debian: apt install qrencode); "
				"the configuration above is the same\n");
		return false;
	}
	if (strpbrk(prog, "'\\")) {
		fprintf(stderr, "meshcoord satellite: qrencode's path %s has a quote in it; not running it\n", prog);
		return false;
	}
	snprintf(cmd, sizeof(cmd), "'%s' -t ansiutf8", prog);
	fflush(stdout);
	FILE *p = popen(cmd, "w");
	if (!p) {
		fprintf(stderr, "meshcoord satellite: cannot run %s: %s\n", prog, strerror(errno));
		return false;
	}
	fputs(text, p);
	int st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "meshcoord satellite: qrencode failed\n");
		return false;
	}
	return true;
}

static int output(const char *text, bool qr)
{
	fputs(text, stdout);
	if (qr && !qr_print(text))
		return SAT_EXIT_FAIL;
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "meshcoord satellite: could not write the output\n");
		return SAT_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

/* ---------------------------------------------------------------- actions */

static const char *add_error(enum db_satellite_result r)
{
	switch (r) {
	case DB_SATELLITE_BAD_NAME:
		return "is not a name: 1 to 63 of a-z, 0-9 and '-', not starting or ending with '-'";
	case DB_SATELLITE_NAME_TAKEN:
		return "is taken by a node, a removed node or a satellite";
	case DB_SATELLITE_KEY_TAKEN:
		return "has a public key that a node or satellite already has";
	case DB_SATELLITE_NO_GATEWAY:
		return "names a gateway that is no node (see 'meshcoord nodes list')";
	case DB_SATELLITE_TOO_MANY:
		return "would be one too many for its gateway (see CONTROL_MAX_SATELLITES: 8 per gateway)";
	case DB_SATELLITE_BAD_TAGS:
		return "has a tag that is not tag:NAME (a-z 0-9 '-'), or more than 16";
	default:
		return "could not be stored: the registry failed (see the log)";
	}
}

static int satellite_add(struct db *db, const struct coord_config *cfg, const struct admin_args *a)
{
	uint8_t priv[WIRE_KEY_LEN], pub[WIRE_KEY_LEN], psk[WIRE_KEY_LEN];
	struct db_satellite sat;
	char text[SAT_CONFIG_MAX];
	struct db_node gw;
	bool generated = !a->public_key;
	int rc = SAT_EXIT_FAIL;

	if (a->endpoint && !endpoint_arg_ok(a->endpoint)) {
		fprintf(stderr, "meshcoord satellite: --endpoint '%s' is not HOST:PORT or [IPV6]:PORT\n", a->endpoint);
		return ADMIN_EXIT_USAGE;
	}
	if (a->public_key) {
		if (!key_from_base64(pub, a->public_key, strlen(a->public_key)) || sodium_is_zero(pub, sizeof(pub))) {
			fprintf(stderr, "meshcoord satellite: --public-key is not a WireGuard public key (44 characters of "
					"base64, as 'wg pubkey' prints)\n");
			return ADMIN_EXIT_USAGE;
		}
	} else {
		key_generate_private(priv);
		if (!key_public_from_private(pub, priv)) {
			sodium_memzero(priv, sizeof(priv));
			fprintf(stderr, "meshcoord satellite: cannot make a key pair\n");
			return SAT_EXIT_FAIL;
		}
	}
	/* Known before anything is written: no endpoint, no satellite (unless --endpoint). */
	if (!gateway_find(db, a->via, &gw))
		goto out;
	struct db_satellite probe;
	memset(&probe, 0, sizeof(probe));
	snprintf(probe.endpoint, sizeof(probe.endpoint), "%s", a->endpoint ? a->endpoint : "");
	if (!endpoint_pick(&probe, &gw, text, sizeof(text)))
		goto out;
	randombytes_buf(psk, sizeof(psk));
	enum db_satellite_result r = db_satellite_add(db, a->positional[1], a->via, pub, psk, generated, a->endpoint, a->tags,
						      (int64_t)time(NULL), &sat);
	sodium_memzero(psk, sizeof(psk));
	if (r != DB_SATELLITE_OK) {
		fprintf(stderr, "meshcoord satellite: '%s' %s\n", a->positional[1], add_error(r));
		rc = r == DB_SATELLITE_ERROR ? SAT_EXIT_FAIL : ADMIN_EXIT_USAGE;
		goto out;
	}
	if (!config_build(db, cfg, &sat, generated ? priv : NULL, text, sizeof(text))) {
		/* Only a bug gets here (the file outgrew its buffer); the satellite is stored, its
		 * file is not printed: say so, or a generated key would be lost unseen. */
		fprintf(stderr, "meshcoord satellite: %s was added but its file could not be built; run "
				"'meshcoord satellite remove %s' and add it again\n", sat.name, sat.name);
		goto out_sat;
	}
	fprintf(stderr, "satellite %s added via %s; its gateway takes it within a second\n", sat.name, sat.gateway_name);
	if (generated)
		fprintf(stderr, "the private key below is shown this once and not stored: copy the file (or scan the "
				"QR code) now\n");
	rc = output(text, a->qr);
out_sat:
	sodium_memzero(&sat, sizeof(sat));
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

static int satellite_config(struct db *db, const struct coord_config *cfg, const char *name, bool qr)
{
	struct db_satellite sat;
	char text[SAT_CONFIG_MAX];
	int rc = SAT_EXIT_FAIL;

	int found = db_satellite_by_name(db, name, &sat);
	if (found <= 0) {
		fprintf(stderr, "meshcoord satellite: %s\n", found == 0 ? "no such satellite (see 'meshcoord satellite list')"
								       : "cannot read the registry");
		return SAT_EXIT_FAIL;
	}
	if (sat.key_generated) {
		fprintf(stderr, "meshcoord satellite: %s's private key was made by 'satellite add' and shown once; it is "
				"not stored. Remove it and add it again (best with --public-key from the device)\n", name);
	} else if (config_build(db, cfg, &sat, NULL, text, sizeof(text))) {
		rc = output(text, qr);
	}
	sodium_memzero(&sat, sizeof(sat));
	sodium_memzero(text, sizeof(text));
	return rc;
}

struct rows {
	struct db_satellite *list;
	size_t n;
};

static void row_add(const struct db_satellite *s, void *arg)
{
	struct rows *rows = arg;

	if (rows->n < SAT_ROWS_MAX) {
		rows->list[rows->n] = *s;
		sodium_memzero(rows->list[rows->n].psk, WIRE_KEY_LEN); /* a listing shows no secret */
		rows->n++;
	}
}

static int satellite_list(struct db *db, bool json)
{
	struct rows rows = { .n = 0 };
	char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN], key[KEY_BASE64_LEN + 1];

	rows.list = malloc(SAT_ROWS_MAX * sizeof(*rows.list));
	if (!rows.list) {
		fprintf(stderr, "meshcoord satellite: out of memory\n");
		return SAT_EXIT_FAIL;
	}
	if (!db_satellites_list(db, row_add, &rows)) {
		fprintf(stderr, "meshcoord satellite: cannot read the registry\n");
		free(rows.list);
		return SAT_EXIT_FAIL;
	}
	if (json)
		printf("{\"satellites\": [");
	else
		printf("%-24s %-24s %-16s %-40s %-44s %s\n", "NAME", "GATEWAY", "IPV4", "IPV6", "KEY", "TAGS");
	for (size_t i = 0; i < rows.n; i++) {
		const struct db_satellite *s = &rows.list[i];
		inet_ntop(AF_INET, s->ipv4, v4, sizeof(v4));
		inet_ntop(AF_INET6, s->ipv6, v6, sizeof(v6));
		key_to_base64(key, s->public_key);
		/* names are [a-z0-9-], tags too, endpoints checked at add: no escaping */
		if (json)
			printf("%s{\"name\": \"%s\", \"gateway\": \"%s\", \"ipv4\": \"%s\", \"ipv6\": \"%s\", "
			       "\"public_key\": \"%s\", \"preshared_key\": %s, \"key_generated\": %s, \"endpoint\": \"%s\", "
			       "\"tags\": \"%s\", \"created\": %" PRId64 "}",
			       i ? ", " : "", s->name, s->gateway_name, v4, v6, key, s->has_psk ? "true" : "false",
			       s->key_generated ? "true" : "false", s->endpoint, s->tags, s->created);
		else
			printf("%-24s %-24s %-16s %-40s %-44s %s\n", s->name, s->gateway_name, v4, v6, key,
			       s->tags[0] ? s->tags : "-");
	}
	if (json)
		printf("]}\n");
	free(rows.list);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "meshcoord satellite: could not write the output\n");
		return SAT_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

static int satellite_remove(struct db *db, const char *name)
{
	bool found;

	if (!db_satellite_remove(db, name, &found)) {
		fprintf(stderr, "meshcoord satellite: cannot remove %s: the registry failed\n", name);
		return SAT_EXIT_FAIL;
	}
	if (!found) {
		fprintf(stderr, "meshcoord satellite: no satellite named '%s' (see 'meshcoord satellite list')\n", name);
		return SAT_EXIT_FAIL;
	}
	fprintf(stderr, "satellite %s removed; its gateway drops it within a second\n", name);
	return EXIT_SUCCESS;
}

int admin_satellite(struct db *db, const struct coord_config *cfg, int argc, char **argv)
{
	struct admin_args a;
	char err[256];

	if (!admin_args_parse(argc, argv, SATELLITE_OPTIONS, &a, err, sizeof(err))) {
		fprintf(stderr, "meshcoord satellite: %s; see --help\n", err);
		return ADMIN_EXIT_USAGE;
	}
	if (a.help || a.n_positional == 0) {
		fputs(satellite_help, a.help ? stdout : stderr);
		return a.help ? EXIT_SUCCESS : ADMIN_EXIT_USAGE;
	}
	if (!db) {
		fprintf(stderr, "meshcoord satellite: no database\n");
		return SAT_EXIT_FAIL;
	}
	const char *action = a.positional[0];
	size_t n_args = a.n_positional - 1; /* after the action */
	bool add_opts = a.via || a.public_key || a.endpoint || a.tags[0];
	if (!strcmp(action, "add") && n_args == 1 && !a.json) {
		if (!a.via) {
			fprintf(stderr, "meshcoord satellite: add needs --via GATEWAY (the node it reaches the mesh through)\n");
			return ADMIN_EXIT_USAGE;
		}
		return satellite_add(db, cfg, &a);
	}
	if (!strcmp(action, "list") && n_args == 0 && !add_opts && !a.qr)
		return satellite_list(db, a.json);
	if (!strcmp(action, "config") && n_args == 1 && !add_opts && !a.json)
		return satellite_config(db, cfg, a.positional[1], a.qr);
	if (!strcmp(action, "remove") && n_args == 1 && !add_opts && !a.json && !a.qr)
		return satellite_remove(db, a.positional[1]);
	fprintf(stderr, "meshcoord satellite: expected 'add NAME --via GATEWAY [...]', 'list [--json]', 'config NAME' "
			"or 'remove NAME'; see --help\n");
	return ADMIN_EXIT_USAGE;
}
