/* The client side of the control socket: `meshd status`, `meshd ping`, `meshd netcheck`.
 * Each connects to the daemon's socket, sends one request (core/ipc.h) and prints the body
 * the daemon rendered: to stdout, or as "meshd CMD: ..." on stderr for an error. */
#ifndef MESHD_CLI_H
#define MESHD_CLI_H

int cli_status(int argc, char **argv);
int cli_ping(int argc, char **argv);
int cli_netcheck(int argc, char **argv);
int cli_set(int argc, char **argv); /* set exit-node NAME|none */

#endif
