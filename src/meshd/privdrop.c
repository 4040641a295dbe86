/* Dropping root: see privdrop.h. Raw capset/prctl: no libcap dependency for four calls. */
#include "meshd/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

enum {
	PW_BUF_LEN = 4096, /* getpwnam_r's buffer: far more than a passwd line */
	/* Capabilities a kernel may define; PR_CAPBSET_DROP fails with EINVAL past the last. */
	CAP_NUMBER_MAX = 64,
};

static bool set_capabilities(uint32_t keep, char *err, size_t err_len)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
	memset(data, 0, sizeof(data));
	data[0].effective = keep;
	data[0].permitted = keep;
	if (syscall(SYS_capset, &hdr, data) != 0) {
		snprintf(err, err_len, "cannot set capabilities: %s", strerror(errno));
		return false;
	}
	return true;
}

bool privdrop_to_user(const char *user, const char *state_dir, char *err, size_t err_len)
{
	char buf[PW_BUF_LEN];
	struct passwd pw, *found = NULL;
	const uint32_t keep = UINT32_C(1) << CAP_NET_ADMIN;

	int rc = getpwnam_r(user, &pw, buf, sizeof(buf), &found);
	if (rc != 0 || !found) {
		snprintf(err, err_len, "user '%s': %s; create it (useradd --system %s) or change 'user:'", user,
			 rc ? strerror(rc) : "no such user", user);
		return false;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, err_len, "user '%s' is root: 'user:' must name an unprivileged user", user);
		return false;
	}
	/* The state directory becomes the user's (its files stay root's and readable: meshd
	 * replaces them by rename, which only needs the directory). */
	if (state_dir && state_dir[0] && chown(state_dir, pw.pw_uid, pw.pw_gid) != 0) {
		snprintf(err, err_len, "cannot give %s to user '%s': %s", state_dir, user, strerror(errno));
		return false;
	}
	for (int cap = 0; cap < CAP_NUMBER_MAX; cap++) {
		if (cap == CAP_NET_ADMIN)
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
			snprintf(err, err_len, "cannot drop capability %d from the bounding set: %s", cap, strerror(errno));
			return false;
		}
	}
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 || setgroups(0, NULL) != 0 ||
	    setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid) != 0 || setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid) != 0) {
		snprintf(err, err_len, "cannot become user '%s': %s", user, strerror(errno));
		return false;
	}
	if (!set_capabilities(keep, err, err_len))
		return false;
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		snprintf(err, err_len, "cannot lock the privileges down: %s", strerror(errno));
		return false;
	}
	/* Root must be gone for good: setuid(0) has to fail now. */
	if (setuid(0) == 0 || getuid() != pw.pw_uid || geteuid() != pw.pw_uid) {
		snprintf(err, err_len, "still able to become root after switching to '%s': refusing to run", user);
		return false;
	}
	return true;
}
