/* Fuzz target: the YAML config parser. config_parse takes an explicit length, so the
 * fuzzer's buffer is passed as is (no NUL terminator): any read past it is a bug. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "meshd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Properties every accepted config must have; abort() makes a violation a crash. */
static void check_config(const struct config *cfg)
{
	size_t iflen = strnlen(cfg->interface, sizeof(cfg->interface));

	if (iflen == 0 || iflen >= sizeof(cfg->interface))
		abort();
	/* With state_dir, the key file and the addresses may come from there and the coordinator. */
	bool managed = cfg->state_dir[0] != '\0';
	if ((!managed && cfg->private_key_file[0] == '\0') ||
	    !memchr(cfg->private_key_file, '\0', sizeof(cfg->private_key_file)))
		abort();
	if ((!managed && cfg->n_addresses < 1) || cfg->n_addresses > CONFIG_MAX_ADDRESSES)
		abort();
	if (cfg->mtu < CONFIG_MIN_MTU || cfg->mtu > CONFIG_MAX_MTU)
		abort();
	/* The control socket always has an absolute path that fits sockaddr_un. */
	if (cfg->control_socket[0] != '/' || !memchr(cfg->control_socket, '\0', sizeof(cfg->control_socket)) ||
	    !memchr(cfg->control_group, '\0', sizeof(cfg->control_group)))
		abort();
	if (cfg->n_peers > CONFIG_MAX_PEERS || (cfg->n_peers > 0) != (cfg->peers != NULL))
		abort();
	for (size_t i = 0; i < cfg->n_peers; i++) {
		const struct config_peer *p = &cfg->peers[i];

		if (p->n_allowed_ips < 1 || p->n_allowed_ips > CONFIG_MAX_ALLOWED_IPS)
			abort();
		if (!memchr(p->name, '\0', sizeof(p->name)) || p->name[0] == '\0')
			abort();
		if (p->has_endpoint && (p->endpoint_port == 0 || p->endpoint_host[0] == '\0' ||
					!memchr(p->endpoint_host, '\0', sizeof(p->endpoint_host))))
			abort();
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct ip_prefix *a = &p->allowed_ips[j];

			if (!(a->family == AF_INET && a->bits <= 32) && !(a->family == AF_INET6 && a->bits <= 128))
				abort();
		}
		for (size_t j = 0; j < i; j++) {
			if (memcmp(cfg->peers[j].public_key, p->public_key, sizeof(p->public_key)) == 0)
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config cfg;
	char err[512];

	err[0] = 'x';
	if (config_parse(&cfg, "fuzz.yaml", (const char *)data, size, err, sizeof(err))) {
		check_config(&cfg);
	} else {
		/* Every refusal explains itself. */
		if (err[0] == '\0' || !memchr(err, '\0', sizeof(err)))
			abort();
		if (cfg.peers != NULL || cfg.n_peers != 0)
			abort();
	}
	config_free(&cfg);
	return 0;
}
