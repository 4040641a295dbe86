/* SIGHUP: read the configuration file again and apply what can change while running
 * (log_level, cookie_threshold, max_peers, static peers added, removed or changed); name each
 * setting that needs a restart; keep everything when the file does not parse. reload.c says
 * how. */
#ifndef MESHD_RELOAD_H
#define MESHD_RELOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "meshd/config.h"

struct device;

/* Where SIGHUP reads the file (path) and the configuration running now (main's; reload
 * replaces it). With log_level_from_cmdline, the file's log_level is ignored. */
void reload_init(struct device *dev, const char *config_path, struct config *running, bool log_level_from_cmdline);
/* SIGHUP arrived (the loop calls it; nothing happens without reload_init). */
void reload_config(struct device *dev, uint64_t now_ms);

#endif
