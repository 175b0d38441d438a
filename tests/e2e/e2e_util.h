/* SPDX-License-Identifier: MIT */
/*
 * Helpers for the root end-to-end tests: a private network namespace,
 * temporary rule files, capture set-up from a rule set, event collection,
 * and small socket/process helpers. Reusable by later tests of the tsguard
 * binary (netns, rules dir, child processes).
 */
#ifndef TSG_E2E_UTIL_H
#define TSG_E2E_UTIL_H

#include "capture.h"
#include "ruleset.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define E2E_SKIP 77

/* Fails the test: prints file:line and the message, returns 1 from main via exit. */
#define CHECK(cond, ...)                                                            \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fprintf(stderr, "\n");                                          \
			e2e_cleanup();                                                  \
			exit(1);                                                        \
		}                                                                   \
	} while (0)

/* Root check (exit 77 otherwise), private netns with lo up, cleanup at exit. */
void e2e_init(const char *name);
/* Kills registered children, removes the rules dir. Safe to call twice. */
void e2e_cleanup(void);

/* Writes YAML to a new temporary rules dir (one file); returns the dir. */
const char *e2e_rules(const char *yaml);

/* Loads rules, builds the plan, starts the capture (exit on failure). */
struct e2e_cap {
	struct tsg_ruleset *rs;
	struct tsg_plan *plan;
	struct tsg_capture *cap;
};
void e2e_cap_start(struct e2e_cap *c, const char *rules_dir);
/* Builds a plan from another rules dir and swaps it in (tsg_capture_update_plan). */
void e2e_cap_update(struct e2e_cap *c, const char *rules_dir);
void e2e_cap_stop(struct e2e_cap *c);

/* Collected events (bounded). */
struct e2e_events {
	struct tsg_event *v;
	size_t n, cap;
};
extern struct e2e_events e2e_ev;
void e2e_collect(void *ctx, const struct tsg_event *ev);
/* Polls for ms milliseconds (collecting). */
void e2e_poll_for(struct e2e_cap *c, int ms);
/* Polls until pid exits (or timeout_ms passes); returns its exit status or -1. */
int e2e_poll_until_exit(struct e2e_cap *c, pid_t pid, int timeout_ms);

/* Forks a child named `comm` (prctl) running fn(arg); registered for cleanup. */
pid_t e2e_spawn(const char *comm, int (*fn)(void *), void *arg);
int e2e_wait(pid_t pid);

/* Sockets on loopback. */
int e2e_listen(int family, const char *addr, uint16_t port, int backlog, bool v6only);
int e2e_connect(int family, const char *addr, uint16_t port, bool nonblock);

/* Lines of a shell command's output (e.g. ss ... | wc -l): first number. */
long e2e_cmd_number(const char *cmd);

/* Pipe-based ready signal between processes. */
struct e2e_sync {
	int fd[2];
};
void e2e_sync_init(struct e2e_sync *s);
void e2e_sync_post(struct e2e_sync *s);
void e2e_sync_wait(struct e2e_sync *s);

uint64_t e2e_now_ns(void);
const char *e2e_fmt_event(const struct tsg_event *ev, char *buf, size_t len);

#endif
