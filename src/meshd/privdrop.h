/* Giving up root once everything that needs it is open (config `user:`): the TUN device,
 * the UDP socket, rtnetlink, the control socket and the key files are opened as root; then
 * meshd becomes that user and keeps one capability, CAP_NET_ADMIN, because the coordinator
 * may assign addresses later and the interface is removed at exit (both rtnetlink). What a
 * bug in the packet path could then do is what that user with CAP_NET_ADMIN could do.
 * Under systemd the same is had without root at all: see contrib/systemd. */
#ifndef MESHD_PRIVDROP_H
#define MESHD_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>

/* Becomes `user` (its uid and primary group, no supplementary groups), keeping only
 * CAP_NET_ADMIN (permitted and effective; the bounding set is cut to it too, and
 * no_new_privs is set). state_dir, if not empty, is given to the user first so meshd can
 * still write its state there. Needs root (or CAP_SETUID, CAP_SETGID, CAP_SETPCAP,
 * CAP_CHOWN); on failure err says what and why in one line. */
bool privdrop_to_user(const char *user, const char *state_dir, char *err, size_t err_len);

#endif
