/* meshcoord's YAML configuration (conf/meshcoord.yaml is the commented example).
 * Strict like the node's: unknown keys and bad values are refused as "file:line:col: ...". */
#ifndef MESHCOORD_COORDCONF_H
#define MESHCOORD_COORDCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ipaddr.h"

enum {
	COORDCONF_PATH_MAX = 4096,
};

#define COORDCONF_DEFAULT_PATH "/etc/meshcoord/coord.yaml"
#define COORDCONF_DEFAULT_STATE_DIR "/var/lib/meshcoord"

struct coord_config {
	/* Control listener (TCP), default 0.0.0.0:CONTROL_DEFAULT_PORT ("[::]:51821" for IPv6). */
	char listen_host[ENDPOINT_HOST_MAX];
	uint16_t listen_port;
	/* STUN listener (UDP), default 0.0.0.0:STUN_DEFAULT_PORT. */
	char stun_host[ENDPOINT_HOST_MAX];
	uint16_t stun_port;
	/* The address nodes use to reach the control listener; goes into join keys. Required. */
	char public_host[ENDPOINT_HOST_MAX];
	uint16_t public_port;
	/* Holds coord.key (0600) and registry.db. */
	char state_dir[COORDCONF_PATH_MAX];
};

/* Parses YAML from memory (no file system access: the fuzz target may call it). */
bool coordconf_parse(struct coord_config *cfg, const char *source_name, const char *text, size_t len, char *err,
		     size_t err_len);
bool coordconf_load(struct coord_config *cfg, const char *path, char *err, size_t err_len);

/* "<state_dir>/coord.key" and "<state_dir>/registry.db"; false if the path is too long. */
bool coordconf_key_path(const struct coord_config *cfg, char *out, size_t cap);
bool coordconf_db_path(const struct coord_config *cfg, char *out, size_t cap);

#endif
