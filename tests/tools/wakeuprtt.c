/* wakeuprtt: what two process wake-ups cost on this machine, the floor under any userspace
 * tunnel's ping (contrib/bench/throughput.sh). A child process echoes UDP datagrams on
 * loopback; the parent sends --count of them, --interval-ms apart (idle between, as ping
 * is), and times each round trip: the child is woken to echo, the parent to read. A ping
 * through meshd wakes a daemon three times (A reads the request from TUN, B the request from
 * the socket and answers from TUN in the same turn, A the reply from the socket), so
 * ping(veth) + 1.5 x this RTT is the lowest ping such a design can show here.
 *
 * Usage: wakeuprtt [--count N] [--interval-ms MS]   (loopback only; bounded: N <= 1000)
 * Prints: count=N avg_us=.. min_us=.. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "core/clock.h"

enum {
	DEFAULT_COUNT = 20,
	DEFAULT_INTERVAL_MS = 200, /* ping's spacing in the benchmark: each probe finds both idle */
	MAX_COUNT = 1000,
	PROBE_LEN = 64,
	REPLY_TIMEOUT_S = 1, /* a lost probe (never on loopback) ends the run rather than hanging */
};

static int loopback_socket(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 ||
	    getsockname(fd, (struct sockaddr *)addr, &len) != 0)
		return -1;
	return fd;
}

int main(int argc, char **argv)
{
	long count = DEFAULT_COUNT, interval_ms = DEFAULT_INTERVAL_MS;
	struct sockaddr_in echo_addr, own_addr;
	uint8_t buf[PROBE_LEN];

	for (int i = 1; i < argc; i++) {
		char *end;
		long v;
		if (i + 1 >= argc)
			goto usage;
		v = strtol(argv[i + 1], &end, 10);
		if (*end || v < 0)
			goto usage;
		if (strcmp(argv[i], "--count") == 0 && v >= 1 && v <= MAX_COUNT)
			count = v;
		else if (strcmp(argv[i], "--interval-ms") == 0 && v <= 10000)
			interval_ms = v;
		else
			goto usage;
		i++;
	}

	int echo_fd = loopback_socket(&echo_addr);
	int fd = loopback_socket(&own_addr);
	if (echo_fd < 0 || fd < 0) {
		perror("wakeuprtt: loopback socket");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("wakeuprtt: fork");
		return 1;
	}
	if (child == 0) {
		close(fd);
		for (long i = 0; i < count; i++) {
			struct sockaddr_in from;
			socklen_t from_len = sizeof(from);
			ssize_t n = recvfrom(echo_fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len);
			if (n < 0 || sendto(echo_fd, buf, (size_t)n, 0, (struct sockaddr *)&from, from_len) != n)
				_exit(1);
		}
		_exit(0);
	}
	close(echo_fd);
	struct timeval timeout = { .tv_sec = REPLY_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));

	uint64_t sum_us = 0, min_us = UINT64_MAX;
	long done = 0;
	memset(buf, 0x5a, sizeof(buf));
	for (; done < count; done++) {
		usleep((useconds_t)interval_ms * 1000u);
		uint64_t t0 = clock_monotonic_us();
		if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&echo_addr, sizeof(echo_addr)) != PROBE_LEN ||
		    recv(fd, buf, sizeof(buf), 0) != PROBE_LEN)
			break;
		uint64_t rtt = clock_monotonic_us() - t0;
		sum_us += rtt;
		if (rtt < min_us)
			min_us = rtt;
	}
	if (done < count)
		kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	if (done < count) {
		fprintf(stderr, "wakeuprtt: probe %ld got no echo within %d s\n", done + 1, REPLY_TIMEOUT_S);
		return 1;
	}
	printf("count=%ld avg_us=%.1f min_us=%llu\n", count, (double)sum_us / (double)count, (unsigned long long)min_us);
	return 0;
usage:
	fprintf(stderr, "usage: wakeuprtt [--count 1..%d] [--interval-ms 0..10000]\n", MAX_COUNT);
	return 2;
}
