/* SPDX-License-Identifier: MIT */
/*
 * churn: loopback TCP connection churn for the capture benchmark, the fast
 * kind. One process opens and closes connections as fast as it can:
 * connect, accept, server close, client close (about 10 state transitions
 * per connection). The server closes first, so TIME_WAIT lands on the
 * server's side (127.0.0.1:PORT), and the clients are bound round-robin to
 * -a client addresses 127.0.0.2, 127.0.0.3, ... with IP_BIND_ADDRESS_NO_PORT:
 * a connect never searches long for a free port, so the rate measures the
 * TCP stack (and whatever traces it), not the port allocator.
 *   churn [-n CONNECTIONS] [-p PORT] [-a CLIENT_ADDRESSES]
 * Prints: connections N seconds S conn_per_s R failed F
 */
#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* One connection from client address 127.0.0.(2 + i % addrs); 0 or -errno. */
static int one_conn(int l, const struct sockaddr_in *srv, long i, int addrs)
{
	struct sockaddr_in c = {.sin_family = AF_INET};
	int one = 1, fd, s, e = 0;

	c.sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + (uint32_t)(i % addrs));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&c, sizeof(c)) ||
	    connect(fd, (const struct sockaddr *)srv, sizeof(*srv))) {
		e = -errno;
		close(fd);
		return e;
	}
	s = accept(l, NULL, NULL);
	if (s < 0)
		e = -errno;
	else
		close(s); /* the server closes first: its side ends in TIME_WAIT */
	close(fd);
	return e;
}

int main(int argc, char **argv)
{
	long n = 100000, fails = 0;
	int port = 7900, addrs = 250, l;
	struct sockaddr_in a = {.sin_family = AF_INET};
	struct timespec t0, t1;
	double s;

	if (bench_args(argc, argv, &n, &port, &addrs))
		return 2;
	if (addrs < 1 || addrs > 250) {
		fprintf(stderr, "churn: -a takes 1..250\n");
		return 2;
	}
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = bench_listener(&a, 1024);
	if (l < 0) {
		fprintf(stderr, "churn: listen: %s\n", strerror(-l));
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int e = one_conn(l, &a, i, addrs);

		if (e && ++fails > 1000) {
			fprintf(stderr, "churn: connect: %s\n", strerror(-e));
			close(l);
			return 1;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("connections %ld seconds %.3f conn_per_s %.0f failed %ld\n", n - fails, s,
	       (double)(n - fails) / s, fails);
	close(l);
	return 0;
}
