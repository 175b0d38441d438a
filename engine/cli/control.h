/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the control socket (docs/ctl.md). A Unix stream
 * socket, mode 0600; one request line per connection (`status`, `alerts`,
 * `reload`, optionally followed by ` json`), one reply, then close.
 *
 * Reply: a header line (`ok`, `error` a bad request, `rejected` the new
 * rules have errors, `failed` the reload could not be applied), then the
 * body that `tsguard ctl` prints.
 *
 * Everything is non-blocking and served from the main loop: the listening
 * socket and every client are polled with the events; a client that says
 * nothing, or reads nothing, is closed after TSG_CONTROL_TIMEOUT_MS. Requests,
 * replies and clients are bounded; what is refused is counted.
 */
#ifndef TSG_CONTROL_H
#define TSG_CONTROL_H

#include "action.h"
#include "engine.h"
#include "ruleset.h"

#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define TSG_CONTROL_DEFAULT	"/run/tsguard/control"
#define TSG_CONTROL_REQUEST_MAX 256	     /* bytes of a request line, with its newline */
#define TSG_CONTROL_MAX_CLIENTS 16	     /* at once; more are answered `error` and closed */
#define TSG_CONTROL_TIMEOUT_MS	2000	     /* for a whole exchange */
#define TSG_CONTROL_MAX_ALERTS	200	     /* listed by `alerts`; the rest counted */
#define TSG_CONTROL_REPLY_MAX	(256 * 1024) /* reload errors are cut there */
#define TSG_CONTROL_MAX_POLLFDS (1 + TSG_CONTROL_MAX_CLIENTS)

struct tsg_control;

/* What `status` and `alerts` read: filled by main on each request. */
struct tsg_control_view {
	const struct tsg_ruleset *rs;
	const struct tsg_engine *engine;
	const struct tsg_actions *actions; /* may be NULL */
	const char *source;		   /* "live", or the replay file */
	bool have_capture;		   /* live: the kernel counters below */
	uint64_t seen, filtered, sent, lost;
	double start_time; /* unix seconds */
	uint64_t reloads_ok, reloads_failed;
};

struct tsg_control_ops {
	void (*view)(void *ctx, struct tsg_control_view *v);
	/* Reloads as SIGHUP does; error lines go to errs as well as to the log.
	 * 0 and *nrules; -EINVAL: the new rules have errors (old rules run on);
	 * other -errno: they could not be applied. */
	int (*reload)(void *ctx, FILE *errs, size_t *nrules);
	/* A signal asked to stop (replay input waits are cut short then). */
	bool (*stopping)(void *ctx);
	void *ctx;
};

struct tsg_control_stats {
	uint64_t requests, bad_requests, busy, timed_out;
};

/*
 * Listens on `path`. A stale socket there (nobody answers) is replaced; a
 * tsguard answering there is -EADDRINUSE. `is_default`: the default path,
 * whose directory is created (0700) when running as root, and whose other
 * failures are a warning: 0 with *out = NULL, running without a socket.
 * Otherwise -errno, with a message logged.
 */
int tsg_control_new(const char *path, bool is_default, const struct tsg_control_ops *ops,
		    struct tsg_control **out);
/* Closes every client and removes the socket file (if it is still ours). */
void tsg_control_free(struct tsg_control *c);

/* The descriptors to poll (at most TSG_CONTROL_MAX_POLLFDS); returns how many. */
size_t tsg_control_fill_pollfds(const struct tsg_control *c, struct pollfd *p, size_t cap);
/* timeout_ms (-1: none) shortened to the next client deadline. */
int tsg_control_timeout(const struct tsg_control *c, int timeout_ms);
/* Serves what poll found ready in p[0..n) (filled above), and timeouts. */
void tsg_control_handle(struct tsg_control *c, const struct pollfd *p, size_t n);

/*
 * Polls fd (for input) together with the control socket for up to
 * timeout_ms (-1: no limit), serving control clients meanwhile. Returns 1
 * when fd is readable, 0 on timeout, -EINTR on a signal.
 */
int tsg_control_wait(struct tsg_control *c, int fd, int timeout_ms);
/*
 * A FILE reading `in` whose reads serve the control socket while they wait
 * (replay from a pipe). Closing it leaves `in` open. NULL on error.
 */
FILE *tsg_control_wrap_input(struct tsg_control *c, FILE *in);

void tsg_control_get_stats(const struct tsg_control *c, struct tsg_control_stats *st);

#endif
