/* SPDX-License-Identifier: MIT */
/*
 * churn: loopback TCP connection churn for the capture benchmark. One
 * process opens and closes connections as fast as it can: connect, accept,
 * client close, server close (about 10 state transitions per connection;
 * the client side ends in TIME_WAIT, reused on loopback by tcp_tw_reuse=2).
 *   churn [-n CONNECTIONS] [-p PORT]
 * Prints: connections N seconds S conn_per_s R
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = 100000;
	int port = 7900, opt, one = 1, l;
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timespec t0, t1;
	double s;
	long fails = 0;

	while ((opt = getopt(argc, argv, "n:p:")) != -1) {
		if (opt == 'n')
			n = atol(optarg);
		else if (opt == 'p')
			port = atoi(optarg);
		else {
			fprintf(stderr, "usage: %s [-n CONNECTIONS] [-p PORT]\n", argv[0]);
			return 2;
		}
	}
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1024)) {
		perror("listen");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s2;

		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a))) {
			if (c >= 0)
				close(c);
			if (++fails > 1000) {
				perror("connect");
				return 1;
			}
			continue;
		}
		s2 = accept(l, NULL, NULL);
		close(c);
		if (s2 >= 0)
			close(s2);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("connections %ld seconds %.3f conn_per_s %.0f failed %ld\n", n - fails, s,
	       (double)(n - fails) / s, fails);
	close(l);
	return 0;
}
