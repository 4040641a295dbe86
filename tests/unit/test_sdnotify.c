/* Unit tests for core/sdnotify: what a listener bound where $NOTIFY_SOCKET points
 * receives (a path, and an abstract name), the watchdog's period, and the no-ops. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/sdnotify.h"
#include "testdir.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return testdir_create(dir, sizeof(dir), "test_sdnotify");
}

static int teardown(void **state)
{
	(void)state;
	sdnotify_close();
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	return testdir_remove(dir);
}

/* A datagram listener like systemd's; abstract when name starts with '@'. Sets
 * $NOTIFY_SOCKET to name. */
static int listen_at(const char *name)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	assert_true(len < sizeof(sun.sun_path));
	memcpy(sun.sun_path, name, len);
	if (name[0] == '@')
		sun.sun_path[0] = '\0';
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (name[0] != '@'));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, alen), 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	return fd;
}

/* The next datagram, or "" when none is waiting. */
static const char *receive(int fd)
{
	static char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	return buf;
}

static void test_path_socket(void **state)
{
	(void)state;
	char path[300];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);

	assert_true(sdnotify_init(1000));
	assert_true(sdnotify_send("READY=1\nSTATUS=interface %s up", "mesh0"));
	assert_string_equal(receive(fd), "READY=1\nSTATUS=interface mesh0 up");
	assert_true(sdnotify_send("STOPPING=1"));
	assert_string_equal(receive(fd), "STOPPING=1");
	assert_int_equal(sdnotify_watchdog_deadline(), UINT64_MAX); /* no WATCHDOG_USEC */
	close(fd);
	unlink(path);
}

static void test_abstract_socket(void **state)
{
	(void)state;
	char name[64];
	snprintf(name, sizeof(name), "@meshd-test-sdnotify-%ld", (long)getpid());
	int fd = listen_at(name);

	assert_true(sdnotify_init(0));
	assert_true(sdnotify_send("READY=1"));
	assert_string_equal(receive(fd), "READY=1");
	close(fd);
}

static void test_watchdog_every_half_interval(void **state)
{
	(void)state;
	char path[300];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);
	char pid[24];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);

	assert_true(sdnotify_init(5000));
	assert_int_equal(sdnotify_watchdog_deadline(), 5000); /* at the loop's first turn */
	sdnotify_watchdog_tick(5000);
	assert_string_equal(receive(fd), "WATCHDOG=1");
	assert_int_equal(sdnotify_watchdog_deadline(), 6000);
	sdnotify_watchdog_tick(5999);
	assert_string_equal(receive(fd), "");
	sdnotify_watchdog_tick(6010);
	assert_string_equal(receive(fd), "WATCHDOG=1");
	assert_int_equal(sdnotify_watchdog_deadline(), 7010);
	close(fd);
	unlink(path);
}

static void test_watchdog_for_another_process(void **state)
{
	(void)state;
	char path[300];
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = listen_at(path);
	char pid[24];
	snprintf(pid, sizeof(pid), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);

	assert_true(sdnotify_init(0));
	assert_int_equal(sdnotify_watchdog_deadline(), UINT64_MAX);
	sdnotify_watchdog_tick(100000);
	assert_string_equal(receive(fd), "");
	close(fd);
	unlink(path);
}

static void test_without_systemd(void **state)
{
	(void)state;
	setenv("WATCHDOG_USEC", "2000000", 1);
	assert_true(sdnotify_init(0));
	assert_false(sdnotify_send("READY=1"));
	assert_int_equal(sdnotify_watchdog_deadline(), UINT64_MAX);
	sdnotify_watchdog_tick(100000);
}

static void test_unusable_socket(void **state)
{
	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_false(sdnotify_init(0));
	assert_false(sdnotify_send("READY=1"));
	char path[300];
	snprintf(path, sizeof(path), "%s/nobody-listens", dir);
	setenv("NOTIFY_SOCKET", path, 1);
	assert_false(sdnotify_init(0));
	assert_false(sdnotify_send("READY=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_path_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abstract_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_every_half_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_watchdog_for_another_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_without_systemd, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_socket, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
