/* meshcoord's network side: the control listener (TCP, Noise sessions with nodes), the STUN
 * responder (UDP) and the live peer maps, in one epoll loop on one thread.
 *
 * The registry (db.h) is the source of truth; the server keeps an in-memory copy of the node
 * table for the maps it streams, and follows the admin subcommands' commits through
 * db_changed() so a removed node is cut off and announced within a second. */
#ifndef MESHCOORD_SERVER_H
#define MESHCOORD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/coordconf.h"
#include "coord/db.h"
#include "core/wire.h"

struct coord_server;

/* Binds the sockets, loads the node table and blocks SIGTERM, SIGINT, SIGUSR1 and SIGHUP (they are
 * read through a signalfd). db stays owned by the caller and must outlive the server.
 * NULL on failure, with one line in err. */
struct coord_server *coord_server_open(const struct coord_config *cfg, struct db *db,
				       const uint8_t coord_private[WIRE_KEY_LEN], char *err, size_t err_len);
/* Serves until SIGTERM or SIGINT: 0 on a clean stop, -1 if the event loop itself failed.
 * SIGUSR1 logs the counters; SIGHUP reads the configuration again (coord_server_set_config). */
int coord_server_run(struct coord_server *s);
/* Closes every connection and socket and wipes the key. NULL is allowed. */
void coord_server_close(struct coord_server *s);

/* Where SIGHUP reads the configuration again, and what was read at start (cfg, copied). With
 * log_level_from_cmdline, a log_level in the file is ignored. Without this, SIGHUP only logs. */
void coord_server_set_config(struct coord_server *s, const char *path, const struct coord_config *cfg,
			     bool log_level_from_cmdline);

/* Logs every counter on one line: "counters: name=value ...". */
void coord_server_log_counters(const struct coord_server *s);

#endif
