/* SPDX-License-Identifier: MIT */
/*
 * tsguard benchmarks: what the loopback load generators share (churn.c,
 * hold.c).
 */
#ifndef TSG_BENCH_LOOPBACK_H
#define TSG_BENCH_LOOPBACK_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP listener on `a` with `backlog`: its fd or -errno. */
static inline int bench_listener(const struct sockaddr_in *a, int backlog)
{
	int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0)
		return -errno;
	if (setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (const struct sockaddr *)a, sizeof(*a)) || listen(l, backlog)) {
		int e = -errno;

		close(l);
		return e;
	}
	return l;
}

/* -n N -p PORT -a ADDRESSES into *n, *port, *addrs; 0, or 2 after the usage. */
static inline int bench_args(int argc, char **argv, long *n, int *port, int *addrs)
{
	int opt;

	while ((opt = getopt(argc, argv, "n:p:a:")) != -1) {
		if (opt == 'n')
			*n = atol(optarg);
		else if (opt == 'p')
			*port = atoi(optarg);
		else if (opt == 'a')
			*addrs = atoi(optarg);
		else
			return fprintf(stderr, "usage: %s [-n N] [-p PORT] [-a ADDRESSES]\n",
				       argv[0]),
			       2;
	}
	return 0;
}

#endif
